"""A local worker: like one Lambda execution environment, it loads the bundle once, then answers
events from the server one at a time with the very handler that runs on Lambda.

Run as ``python -m nimbus_jupyter.targets.local.worker BUNDLE_DIR``; frames come on stdin and go
out on the original stdout, while anything the pipeline prints goes to stderr (the server's log).
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Any, BinaryIO


def main(bundle_dir: str) -> int:
    from .allocator import keep_freed_memory
    from .framing import encode

    keep_freed_memory()

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() in user components must not corrupt the frame stream
    sys.stdout = sys.stderr
    inp = os.fdopen(os.dup(0), "rb")
    try:
        from nimbus_jupyter.runtime import handler

        loaded = handler.load(bundle_dir)
    except BaseException as exc:  # report why the bundle did not load, then stop
        out.write(encode({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))
        out.flush()
        return 1
    return serve(inp, out, loaded)


def serve(inp: BinaryIO, out: BinaryIO, loaded: Any) -> int:
    """Say ready, then answer events one at a time until the server closes the stream. A forked worker
    (zygote.py) runs this same loop on its socket."""
    from .framing import encode, read_frame

    out.write(encode({"ready": True, "load_seconds": loaded.load_seconds, "pid": os.getpid(),
                      "extensions": loaded.extensions}))
    out.flush()
    from nimbus_jupyter.runtime import handler

    while True:
        try:
            event = read_frame(inp)
        except (EOFError, ConnectionError):
            return 0  # the server closed our stream: it is stopping or it died
        response = handler.handler(event, None)
        response["nimbus_texts"] = handler.texts_in_last_request()  # for the server's request log line
        response["nimbus_row_errors"] = handler.rows_failed_in_last_request()
        try:
            out.write(encode(response))
            out.flush()
        except (BrokenPipeError, ConnectionError):
            return 0  # the server went away while we ran its event


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
