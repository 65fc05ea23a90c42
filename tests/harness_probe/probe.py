"""A tiny Lambda function for the harness's own checks: what the sandbox allows, and the emulator's limits."""
import importlib.util
import os
import platform
import sys
import time


def handler(event, context):
    op = event.get("op")
    if op == "env":
        return {"env": dict(os.environ), "sys_path": sys.path, "executable": sys.executable, "uid": os.getuid(),
                "remaining_ms": context.get_remaining_time_in_millis(), "machine": platform.machine(),
                "python": "%d.%d" % sys.version_info[:2], "cwd": os.getcwd()}
    if op == "pyc":  # the .pyc a module of the layer would load, and whether this interpreter accepts it
        spec = importlib.util.find_spec(event["module"])
        try:
            with open(spec.cached, "rb") as handle:
                header = handle.read(16)
        except OSError:
            return {"origin": spec.origin, "cached": spec.cached, "exists": False}
        return {"origin": spec.origin, "cached": spec.cached, "exists": True,
                "magic_ok": header[:4] == importlib.util.MAGIC_NUMBER, "flags": int.from_bytes(header[4:8], "little")}
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
