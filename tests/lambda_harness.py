"""A Lambda execution environment on this machine: the real awslambdaric against a Runtime API emulator.

What runs: the layer as ``/opt`` and the function code as ``/var/task`` (read-only bind mounts in a mount
namespace of the function's own, made with ``unshare --mount``; we are root, and a read-only mount stops
root too), ``/tmp`` a tmpfs of the function's ephemeral size, awslambdaric from PyPI (built for the
runtime's Python and arch) as ``/var/runtime``, started as Lambda's bootstrap starts it
(``python -m awslambdaric HANDLER``) in an interpreter of the runtime's minor with no site-packages
(``-S -s``), no HOME, and Lambda's environment variables. The interpreter (``interpreter``): one of this
machine's CPythons (pyenv) when it has the minor for the host's arch; else Debian's CPython of that minor
in a root of its own (``debian_root``: extracted by .ci/debian-python.sh on first use, cached), in which
the function then runs chrooted with the whole root read-only but ``/tmp``, as on Lambda; arm64 runs under
``qemu-aarch64 -L`` with the Debian arm64 root mounted at /var/lang.

The emulator (``RuntimeApi``) serves the Runtime API on 127.0.0.1 and enforces Lambda's documented limits:
a request over 6 MB is refused before the function sees it; a response over 6,291,556 bytes is answered 413
and the invocation fails with Function.ResponseSizeTooLarge; init must reach the first /next within
the init budget (10 s; scaled under qemu, which emulates every instruction); an invocation past the
function timeout kills the environment. It counts function errors as Lambda's ``Errors`` metric does
(error responses, oversize responses, timeouts, crashes) and reads the function's EMF log lines.
"""
from __future__ import annotations

import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional

AWSLAMBDARIC = "awslambdaric==4.2.2"
REQUEST_LIMIT = 6 * 1024 * 1024  # synchronous invocation request: 6 MB
RESPONSE_LIMIT = 6_291_556  # synchronous invocation response, as the Runtime API enforces it
INIT_BUDGET_S = 10.0
QEMU_SLOWDOWN = 20.0  # init budget factor under qemu-aarch64 (instruction emulation), not Lambda's
CACHE = Path(os.environ.get("NIMBUS_HARNESS_CACHE", "/var/cache/nimbus-harness"))
# Debian suites whose CPython is the runtime's minor (trixie's python3 is 3.13, forky's 3.14)
DEBIAN_SUITES = {"3.13": "trixie", "3.14": "forky"}
DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
PREPARE = Path(__file__).resolve().parent.parent / ".ci" / "debian-python.sh"
PREPARE_TIMEOUT_S = 900
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
HANDLER = "nimbus_jupyter.runtime.lambda_entry.handler"


class HarnessUnavailable(Exception):
    """A part the harness needs is missing on this machine (the message says which and how to get it)."""


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    status: str = ""  # "ok" | "error"
    payload: Any = None
    error_type: str = ""
    runtime_status: Optional[int] = None  # what the Runtime API answered the runtime client's POST


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):  # a killed function's /next
            super().handle_error(request, client_address)


class RuntimeApi:
    """Lambda's Runtime API (2018-06-01) for one function, served on 127.0.0.1."""

    def __init__(self, timeout_s: float, function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:nimbus") -> None:
        self.timeout_s = timeout_s
        self.function_arn = function_arn
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.invocations: Dict[str, Invocation] = {}
        self.errors = 0  # Lambda's Errors metric
        self.invocation_count = 0
        self.init_error: Optional[dict] = None
        self.first_next_at: Optional[float] = None
        self.server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "RuntimeApi":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: Optional[Dict[str, str]] = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self._reply(404)
                if api.first_next_at is None:
                    api.first_next_at = time.monotonic()
                while True:
                    try:
                        inv = api.pending.get(timeout=1)
                        break
                    except queue.Empty:
                        continue
                self._reply(200, inv.event, {"Lambda-Runtime-Aws-Request-Id": inv.request_id,
                                             "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                                             "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                                             "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"})

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                body = self._body()
                if parts[-2:] == ["init", "error"]:
                    api.init_error = json.loads(body or b"{}")
                    return self._reply(202, b'{"status":"OK"}')
                if len(parts) != 5 or parts[2] != "invocation" or parts[3] not in api.invocations:
                    return self._reply(400, b'{"errorType":"InvalidRequestID"}')
                inv = api.invocations[parts[3]]
                if parts[4] == "response":
                    if len(body) > RESPONSE_LIMIT:  # Lambda: 413 to the runtime, the caller sees an error
                        inv.runtime_status = 413
                        self._reply(413, json.dumps({"errorMessage": f"Exceeded maximum allowed payload size "
                                                     f"({RESPONSE_LIMIT} bytes).", "errorType": "RequestEntityTooLarge"}).encode())
                        return api._finish(inv, "error", {"errorMessage": f"Response payload size ({len(body)} bytes) exceeded "
                                           f"maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
                                           "errorType": "Function.ResponseSizeTooLarge"}, "Function.ResponseSizeTooLarge")
                    inv.runtime_status = 202
                    self._reply(202, b'{"status":"OK"}')
                    return api._finish(inv, "ok", json.loads(body) if body else None)
                if parts[4] == "error":
                    inv.runtime_status = 202
                    self._reply(202, b'{"status":"OK"}')
                    payload = json.loads(body or b"{}")
                    return api._finish(inv, "error", payload, payload.get("errorType", "Unhandled"))
                self._reply(404)

        return Handler

    def _finish(self, inv: Invocation, status: str, payload: Any, error_type: str = "") -> None:
        inv.status, inv.payload, inv.error_type = status, payload, error_type
        if status == "error":
            self.errors += 1
        inv.done.set()

    def submit(self, event: Any) -> Invocation:
        """Queue one synchronous invocation (a request over the limit is refused before the function sees it)."""
        data = json.dumps(event).encode()
        request_id = str(uuid.uuid4())
        inv = Invocation(request_id, data, int((time.time() + self.timeout_s) * 1000))
        self.invocation_count += 1
        if len(data) > REQUEST_LIMIT:
            inv.status, inv.error_type = "refused", "RequestTooLargeException"
            inv.payload = {"message": f"Request must be smaller than {REQUEST_LIMIT} bytes for the InvokeFunction operation"}
            inv.done.set()
            return inv
        self.invocations[request_id] = inv
        self.pending.put(inv)
        return inv


@dataclass
class Environment:
    """What one function needs: its layer, code, runtime Python and arch, memory, timeout and /tmp."""

    layer_dir: Path  # holds python/
    code_dir: Path  # the task root
    python: str  # "3.13"
    arch: str = "x86_64"
    timeout_s: int = 60
    memory_mb: int = 2048
    tmp_mb: int = 512
    env: Dict[str, str] = field(default_factory=dict)
    handler: str = HANDLER


def runtime_client_dir(python: str, arch: str) -> Path:
    """awslambdaric from PyPI for that Python and arch (its C extension is per both), cached."""
    target = CACHE / f"awslambdaric-{AWSLAMBDARIC.split('==')[1]}-py{python}-{arch}"
    if (target / "awslambdaric" / "__init__.py").is_file():
        return target
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    plats = [a for tag in (f"manylinux2014_{machine}", f"manylinux_2_17_{machine}", f"manylinux_2_28_{machine}")
             for a in ("--platform", tag)]
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(partial), *plats,
                           "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
                           "--disable-pip-version-check", AWSLAMBDARIC], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise HarnessUnavailable(f"pip could not install {AWSLAMBDARIC} for Python {python} {arch}: {proc.stderr[-500:]}")
    CACHE.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)
    return target


def debian_root(python: str, arch: str) -> Path:
    """Debian's CPython ``python`` for ``arch`` in a root of its own, extracted on first use (bounded)."""
    suite = DEBIAN_SUITES.get(python)
    if suite is None:
        raise HarnessUnavailable(f"no Debian suite known here with CPython {python} (known: {sorted(DEBIAN_SUITES)})")
    root = CACHE / f"{suite}-{DEBIAN_ARCH[arch]}"
    if (root / ".nimbus-ready").exists() and (root / "usr" / "bin" / f"python{python}").exists():
        return root
    if not shutil.which("mmdebstrap"):
        raise HarnessUnavailable(f"no Python {python} for {arch} here and no mmdebstrap to extract Debian {suite}'s "
                                 "(apt-get install mmdebstrap; .ci/run does)")
    try:
        proc = subprocess.run(["bash", str(PREPARE), suite, DEBIAN_ARCH[arch], python], capture_output=True, text=True,
                              timeout=PREPARE_TIMEOUT_S, env={**os.environ, "NIMBUS_HARNESS_CACHE": str(CACHE)})
    except subprocess.TimeoutExpired:
        raise HarnessUnavailable(f"extracting Debian {suite}'s python{python} for {arch} took over {PREPARE_TIMEOUT_S} s")
    if proc.returncode != 0:
        raise HarnessUnavailable(f"{PREPARE.name} {suite} {DEBIAN_ARCH[arch]} {python} failed: {proc.stderr[-800:]}")
    return root


LANG_DIR = "/var/lang"  # where the sandbox mounts a qemu root (Lambda's own runtime lives under /var/lang)


@dataclass(frozen=True)
class Interpreter:
    """How the sandbox starts a CPython: ``command`` as seen inside it; ``root`` a Debian root that the
    sandbox chroots into (``mode`` "chroot", the host's arch: only the root's files, read-only) or mounts
    read-only at /var/lang for ``qemu-aarch64 -L`` (``mode`` "qemu"); "host": this machine's own."""

    command: List[str]
    root: Optional[Path] = None
    mode: str = "host"


def interpreter(python: str, arch: str) -> Interpreter:
    """A CPython of ``python`` for ``arch``: this machine's (pyenv, PATH) for the host's arch if it has the
    minor, else Debian's in its root (chrooted; under qemu-aarch64 for arm64 on x86)."""
    if arch == HOST_ARCH:
        from nimbus_jupyter.targets.aws.interpreters import find_python

        found = find_python(python)
        if found and not found.endswith("-host"):  # -host: a Debian root's python outside its root (for compiling)
            return Interpreter([found])
        return Interpreter([f"/usr/bin/python{python}"], debian_root(python, arch), "chroot")
    if arch == "arm64":
        qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
        if not qemu:
            raise HarnessUnavailable("qemu-aarch64 is not installed (apt-get install qemu-user; .ci/run does)")
        # the root is mounted at /var/lang before /tmp becomes the function's tmpfs: a cache under /tmp stays seen
        return Interpreter([qemu, "-L", LANG_DIR, f"{LANG_DIR}/usr/bin/python{python}"], debian_root(python, arch), "qemu")
    raise HarnessUnavailable(f"cannot run {arch} on {platform.machine()}")


def compile_python(python: str) -> str:
    """An interpreter of ``python`` runnable here, to precompile a layer's .pyc (the same for both arches):
    this machine's, or the host-arch Debian root's through its own loader. It is also put in
    ``NIMBUS_PYTHON_X_Y``, where ``build_layer`` looks first."""
    from nimbus_jupyter.targets.aws.interpreters import find_python

    found = find_python(python)
    if not found:
        found = str(debian_root(python, HOST_ARCH) / "usr" / "bin" / f"python{python}-host")
        os.environ[f"NIMBUS_PYTHON_{python.replace('.', '_')}"] = found
    return found


def lambda_environment(env: Environment, api: RuntimeApi) -> Dict[str, str]:
    """Lambda's reserved environment variables (Lambda Developer Guide, "Defined runtime environment
    variables") plus the function's own; nothing of this process's (no HOME)."""
    name = env.env.get("NIMBUS_DEPLOYMENT", "harness")
    site = f"/opt/python/lib/python{env.python}/site-packages"
    return {
        "AWS_LAMBDA_FUNCTION_NAME": f"nimbus-{name}", "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(env.memory_mb), "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/nimbus-{name}", "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[1]harness",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EXECUTION_ENV": f"AWS_Lambda_python{env.python}",
        "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": env.handler, "LANG": "en_US.UTF-8", "TZ": ":UTC", "PATH": "/usr/local/bin:/usr/bin:/bin:/opt/bin",
        "LD_LIBRARY_PATH": "/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        # Lambda's sys.path order for Python: task root, the layer's two places, the runtime
        "PYTHONPATH": f"/var/task:{site}:/opt/python:/var/runtime",
        **env.env,
    }


SANDBOX = r"""
set -e
R=""
case "$H_MODE" in
  chroot)  # a Debian root: all of it read-only, the function's parts mounted inside
    R="$H_ROOT"
    mount --bind "$R" "$R"
    mount -o remount,bind,ro "$R"
    mount --bind /proc "$R/proc"
    mount --rbind /dev "$R/dev" ;;
  qemu)
    mkdir -p /var/task /var/runtime /var/lang
    mount --bind -o ro "$H_ROOT" /var/lang ;;
  *)
    mkdir -p /var/task /var/runtime ;;
esac
mount --bind -o ro "$H_LAYER" "$R/opt"
mount --bind -o ro "$H_CODE" "$R/var/task"
mount --bind -o ro "$H_RIC" "$R/var/runtime"
mount -t tmpfs -o size="$H_TMP_MB"m,mode=1777 tmpfs "$R/tmp"
unset H_LAYER H_CODE H_RIC H_TMP_MB H_ROOT H_MODE
if [ -n "$R" ]; then
  exec unshare --root="$R" --wd=/var/task "$@"
fi
cd /var/task
exec "$@"
"""


def _cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of a process (the sandbox execs, so its pid is the interpreter's, or qemu's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LambdaFunction:
    """One execution environment: started by ``start`` (the cold start), invoked until it dies or is closed."""

    def __init__(self, env: Environment, api: RuntimeApi, log_path: Path) -> None:
        self.env, self.api, self.log_path = env, api, log_path
        self.process: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        self.init_seconds: Optional[float] = None
        self.init_cpu_seconds: Optional[float] = None  # user + system CPU of the function process during init
        self.cold_starts = 0

    def start(self, init_budget_s: Optional[float] = None) -> float:
        """Cold start; returns the init duration (spawn to the first /next), or raises with the log's tail."""
        found = interpreter(self.env.python, self.env.arch)
        budget = init_budget_s or INIT_BUDGET_S * (QEMU_SLOWDOWN if self.env.arch != HOST_ARCH else 1)
        ric = runtime_client_dir(self.env.python, self.env.arch)
        outer = {"H_LAYER": str(self.env.layer_dir), "H_CODE": str(self.env.code_dir), "H_RIC": str(ric),
                 "H_TMP_MB": str(self.env.tmp_mb), "H_ROOT": str(found.root or ""), "H_MODE": found.mode,
                 "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                 **lambda_environment(self.env, self.api)}
        self.log = open(self.log_path, "ab")
        self.cold_starts += 1
        self.api.first_next_at = None
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", SANDBOX, "sandbox",
             *found.command, "-S", "-s", "-m", "awslambdaric", self.env.handler],
            env=outer, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = self.started_at + budget
        while time.monotonic() < deadline:
            if self.api.first_next_at is not None and self.api.first_next_at >= self.started_at:
                self.init_seconds = self.api.first_next_at - self.started_at
                self.init_cpu_seconds = _cpu_seconds(self.process.pid)  # it waits on /next now: nothing runs
                return self.init_seconds
            if self.process.poll() is not None:
                raise RuntimeError(f"init failed (exit {self.process.returncode}): {self.api.init_error}\n{self.log_tail()}")
            time.sleep(0.005)
        self.kill()
        raise RuntimeError(f"init exceeded the {budget:.0f} s budget (Lambda's is {INIT_BUDGET_S:.0f} s)\n{self.log_tail()}")

    def invoke(self, event: Any) -> Invocation:
        """One synchronous invoke; past the function timeout the environment is killed (as Lambda does)."""
        if self.process is not None and self.process.poll() is not None:  # died (crash, timeout): Lambda starts anew
            self.log.close()
            self.start()
        inv = self.api.submit(event)
        if inv.status == "refused":
            return inv
        waited = time.monotonic() + self.env.timeout_s * (QEMU_SLOWDOWN if self.env.arch != HOST_ARCH else 1)
        while not inv.done.wait(0.05) and time.monotonic() < waited:
            if self.process.poll() is not None:  # the runtime exited mid-invocation: Runtime.ExitError
                self.api._finish(inv, "error", {"errorMessage": f"Runtime exited with error: exit status "
                                                f"{self.process.returncode}", "errorType": "Runtime.ExitError"},
                                 "Runtime.ExitError")
        if not inv.done.is_set():
            self.kill()
            self.api._finish(inv, "error", {"errorMessage": f"Task timed out after {self.env.timeout_s:.2f} seconds",
                                            "errorType": "Sandbox.Timedout"}, "Sandbox.Timedout")
        return inv

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text("utf-8", "replace")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_text()[-n:]

    def emf_metrics(self) -> Dict[str, float]:
        """Sums of the metrics the function's Embedded Metric Format log lines declare (what CloudWatch makes of them)."""
        totals: Dict[str, float] = {}
        for line in self.log_text().splitlines():
            start = line.find('{"_aws"')
            if start < 0:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            for directive in record["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + record.get(metric["Name"], 0)
        return totals

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        if getattr(self, "log", None):
            self.log.close()
