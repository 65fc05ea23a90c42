"""The fake target's server: ``python -m nimbus_fake_target.server DEPLOYMENT_DIR``. The real runtime
handler answers API Gateway proxy events made from each HTTP request, one at a time; the API key is
checked (constant time) on every route but ``/health``; 127.0.0.1 only."""
from __future__ import annotations

import hmac
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1])
    config = json.loads((root / "server.json").read_text("utf-8"))
    os.environ.update({"NIMBUS_BUNDLE_DIR": config["bundle_dir"], "NIMBUS_VERSION": str(config["version"]),
                       "NIMBUS_DEPLOYMENT": config["name"]})
    from nimbus_jupyter.core.files import write_json_atomic
    from nimbus_jupyter.runtime.handler import handler, load

    load()
    key = (root / "api_key").read_text("utf-8").strip().encode()
    one_at_a_time = threading.Lock()  # the handler's pipeline answers one request at a time
    slots = threading.BoundedSemaphore(int(config["threads"]))  # requests read and written at once
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with slots:
                self.answer("GET")

        def do_POST(self) -> None:
            with slots:
                self.answer("POST")

        def answer(self, method: str) -> None:
            started, rid = time.time(), uuid.uuid4().hex[:12]
            path = self.path.split("?")[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            given = (self.headers.get("x-api-key") or "").encode()
            if path != "/health" and not hmac.compare_digest(given, key):
                status, headers, payload = 403, {}, json.dumps({"message": "Forbidden"})
            else:
                event = {"path": path, "resource": path, "httpMethod": method, "headers": dict(self.headers),
                         "body": body.decode("utf-8", "surrogatepass") if body else None, "isBase64Encoded": False,
                         "requestContext": {"requestId": rid}}
                with one_at_a_time:
                    answer = handler(event, None)
                status, headers, payload = answer["statusCode"], answer.get("headers") or {}, answer.get("body") or ""
            data = payload.encode("utf-8")
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if not config["quiet"]:
                line = json.dumps({"time": started, "id": rid, "method": method, "path": path, "status": status,
                                   "ms": round((time.time() - started) * 1000, 2)})
                with log_lock, open(root / "requests.log", "a", encoding="utf-8") as log:
                    log.write(line + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    write_json_atomic(root / "state.json", {"pid": os.getpid(), "port": server.server_address[1]})
    server.serve_forever()


if __name__ == "__main__":
    main()
