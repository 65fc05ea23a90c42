"""The CDK CLI as a subprocess: find (or install) the pinned version, synthesize, bootstrap, deploy.

The CLI is pinned so that the cloud assembly written by the bundled app (aws-cdk-lib from PyPI) is one
it reads. It is found on PATH when its version matches, else in the package's cache, where it is
installed with npm on first use (a few seconds, about 20 MB).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from ...core.errors import DeployFailed, UserInputError
from .spec import SPEC_CONTEXT_KEY

CDK_CLI_VERSION = "2.1148.1"
MIN_NODE_MAJOR = 18
INSTALL_COMMAND = f"npm install -g aws-cdk@{CDK_CLI_VERSION}"
Line = Callable[[str], None]


def cache_dir() -> Path:
    from ...core.paths import nimbus_cache

    return nimbus_cache() / "cdk-cli"


def node_version() -> Optional[str]:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.lstrip("v") or None


def require_node() -> str:
    version = node_version()
    if version is None:
        raise UserInputError("Node.js is not installed; the CDK CLI needs it",
                             "install Node.js 20 or newer: apt-get install -y nodejs npm  (or from nodejs.org)",
                             where="pre-flight")
    if int(version.split(".")[0]) < MIN_NODE_MAJOR:
        raise UserInputError(f"Node.js {version} is too old for the CDK CLI (it needs {MIN_NODE_MAJOR}+)",
                             "install Node.js 20 or newer (nodejs.org, or your package manager)", where="pre-flight")
    return version


def _cli_version(executable: str) -> Optional[str]:
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60, env=cli_env()).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"\s*(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else None


def find_cli() -> Optional[str]:
    """The pinned CDK CLI: ``$NIMBUS_CDK``, the cache, or ``cdk`` on PATH when its version matches."""
    for candidate in (os.environ.get("NIMBUS_CDK"), str(cache_dir() / "node_modules" / ".bin" / "cdk"), shutil.which("cdk")):
        if candidate and Path(candidate).exists() and _cli_version(candidate) == CDK_CLI_VERSION:
            return candidate
    return None


def ensure_cli(on_line: Line = lambda _line: None) -> str:
    """The pinned CLI's path, installing it with npm into the cache when missing."""
    found = find_cli()
    if found:
        return found
    require_node()
    npm = shutil.which("npm")
    if npm is None:
        raise UserInputError("npm is not installed, so the CDK CLI cannot be installed",
                             f"install npm (apt-get install -y npm), or run: {INSTALL_COMMAND}", where="pre-flight")
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    on_line(f"installing the CDK CLI {CDK_CLI_VERSION} with npm into {target}")
    done = subprocess.run([npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", "--loglevel=error",
                           f"aws-cdk@{CDK_CLI_VERSION}"], capture_output=True, text=True, timeout=600)
    cli = target / "node_modules" / ".bin" / "cdk"
    if done.returncode != 0 or not cli.exists():
        raise UserInputError(f"npm could not install the CDK CLI: {_last_lines(done.stderr or done.stdout, 3)}",
                             f"check the npm registry is reachable, then run: {INSTALL_COMMAND}", where="pre-flight")
    return str(cli)


def cli_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({"CDK_DISABLE_CLI_TELEMETRY": "true", "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
                "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "NODE_NO_WARNINGS": "1", "CI": "true",
                "FORCE_COLOR": "0"})
    env.update(extra or {})
    return env


def synth(spec_path: Path, outdir: Path, env: Optional[Dict[str, str]] = None) -> Path:
    """Run the bundled app the way the CDK CLI would, writing the cloud assembly to ``outdir``."""
    from .app_location import cdk_app_dir

    outdir.mkdir(parents=True, exist_ok=True)
    context = json.dumps({SPEC_CONTEXT_KEY: str(spec_path)})
    done = subprocess.run([sys.executable, str(cdk_app_dir() / "app.py")], cwd=str(cdk_app_dir()),
                          env=cli_env({"CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": context, **(env or {})}),
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not (outdir / "manifest.json").exists():
        raise DeployFailed(f"the CDK app failed to synthesize: {_last_lines(done.stderr, 6)}",
                           "this is a bug in nimbus-jupyter's CDK app; please report it with this message", where="synthesize")
    return outdir


def bootstrap(cli: str, account: str, region: str, env: Dict[str, str], on_line: Line) -> None:
    run(cli, ["bootstrap", f"aws://{account}/{region}"], env, on_line, where="bootstrap",
        todo=f"bootstrap by hand to see the details: cdk bootstrap aws://{account}/{region}")


def deploy(cli: str, assembly: Path, stack: str, outputs_file: Path, env: Dict[str, str], on_line: Line) -> None:
    # --method direct: create/update the stack without a change set. The plan was already shown by
    # nimbus, and it is the method moto (our test double for CloudFormation) executes faithfully.
    run(cli, ["deploy", stack, "--app", str(assembly), "--method", "direct", "--require-approval", "never",
              "--outputs-file", str(outputs_file), "--progress", "events"], env, on_line, where="deploy",
        todo="see the reason above; fix it and deploy again (nothing was left half made)")


def run(cli: str, args: Sequence[str], env: Dict[str, str], on_line: Line, where: str, todo: str) -> List[str]:
    """Run the CLI, passing each output line to ``on_line``; raise DeployFailed with its error lines."""
    command = [cli, *args, "--no-notices", "--no-color", "--ci"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env(env))
    lines: List[str] = []
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip()
        if line:
            lines.append(line)
            on_line(line)
    code = process.wait()
    if code != 0:
        raise DeployFailed(f"cdk {args[0]} failed: {error_summary(lines)}", todo, where=where)
    return lines


def error_summary(lines: Sequence[str]) -> str:
    """The CLI's own reasons, most specific first: per-asset/stack ``fail:`` lines, then ❌ and errors."""
    specific = [l.split(": fail: ", 1)[1] for l in lines if ": fail: " in l]
    general = [l for l in lines if "❌" in l or "Error" in l or "failed" in l.lower()]
    picked = list(dict.fromkeys(specific + general)) or list(lines[-3:])
    return " | ".join(l.strip(" ‣❌") for l in picked[:3]) or "(no output)"


def _last_lines(text: str, n: int) -> str:
    lines = [l.strip() for l in (text or "").strip().splitlines() if l.strip()]
    return " | ".join(lines[-n:]) or "(no output)"
