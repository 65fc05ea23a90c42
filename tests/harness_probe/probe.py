"""A tiny Lambda function for the harness's own checks: what the sandbox allows, and the emulator's limits."""
import os
import sys
import time


def handler(event, context):
    op = event.get("op")
    if op == "env":
        return {"env": dict(os.environ), "sys_path": sys.path, "executable": sys.executable, "uid": os.getuid(),
                "remaining_ms": context.get_remaining_time_in_millis()}
    if op == "write":
        try:
            with open(event["path"], "w") as handle:
                handle.write("x" * event.get("bytes", 1))
            return {"written": True}
        except OSError as exc:
            return {"written": False, "errno": exc.errno, "error": str(exc)}
    if op == "big":
        return "x" * event["bytes"]
    if op == "sleep":
        time.sleep(event["seconds"])
        return {"slept": True}
    if op == "raise":
        raise ValueError("probe raised")
    return {"op": op}
