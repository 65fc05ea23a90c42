"""The spaCy dependency layer for Lambda, built from manylinux wheels without Docker, cached by its pins.

Why this shape: a Lambda layer is a directory tree unzipped under /opt, and Python finds /opt/python.
pip can fetch wheels for another platform (``--platform``/``--python-version``/``--only-binary``), so
the layer needs no Docker; pinning the kernel's own versions keeps predictions identical. The layer
is then trimmed (tests, sources, headers), the packages' own shared objects stripped, and .pyc
precompiled as unchecked-hash files, because /opt is read-only and unzipped with new mtimes: without
them every cold start compiles every module again.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from filelock import FileLock
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ...core.errors import UserInputError
from .package import dir_size
from .spec import ARCHITECTURES

BUILDER_VERSION = "4"  # bump when the steps below change what a layer holds: old cache entries then miss
PIP_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# glibc of the Lambda runtime's OS (runtimes.py's table): python3.9-3.11 run on Amazon Linux 2 (glibc 2.26),
# python3.12+ on Amazon Linux 2023 (glibc 2.34). A manylinux_2_28 wheel on AL2 fails at import.
AL2_GLIBC, AL2023_GLIBC = 26, 34
META_FILE = "nimbus-layer.json"
WHERE = "AWS layer"
# Left out of the layer, measured: spaCy and thinc declare setuptools, but loading and running a pipeline
# never imports it (only `spacy package`, a CLI command, does) -- 11 MB. spaCy's CLI stack (typer, click,
# rich, pygments, weasel, httpx) stays: the function's init defers spacy.cli (runtime/lambda_entry.py), but
# spaCy's CLI and spacy.info() still work on first use.
NOT_AT_RUNTIME = frozenset({"setuptools"})
# Precompiled whole: the packages that build and run a pipeline, whose modules load lazily by registry
# name (spacy.lang.xx, thinc layers, pydantic schema code). Other packages get .pyc only for the modules
# ``import spacy`` imports (measured in the kernel, same versions): pygments' 500 lexers are never used.
COMPILE_WHOLE = ("spacy", "thinc", "spacy_legacy", "spacy_loggers", "pydantic", "pydantic_core", "confection",
                 "catalogue", "srsly", "wasabi", "cymem", "preshed", "murmurhash", "blis")
TRIM_DIRS = frozenset({"tests", "test", "__pycache__"})
# Build tools shipped inside numpy, found by grep to be imported by nothing a pipeline runs: numpy.distutils
# (setup.py builds) and numpy._core._simd (a test harness of SIMD intrinsics; only distutils and tests use it).
TRIM_GLOBS = ("numpy/distutils", "numpy/_core/_simd.*.so")
TRIM_SUFFIXES = (".pyx", ".pxd", ".pxi", ".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".pyi", ".a")
OnStep = Callable[[str, str], None]


@dataclass
class LayerBuild:
    """One layer directory (holds ``python/``) and what it took to make it."""

    path: Path
    key: str
    cached: bool
    python: str
    arch: str
    pins: List[str]
    langs: Optional[List[str]]  # the spaCy languages kept; None: all
    raw_bytes: int  # after pip
    trimmed_bytes: int
    stripped_bytes: int
    unzipped_bytes: int  # the final directory, .pyc included: what counts against Lambda's 250 MB
    seconds: float  # this call; a cache hit is fast
    build_seconds: float  # the build that made the cached entry
    stripped: bool = False
    compiled: bool = False
    notes: List[str] = field(default_factory=list)

    @property
    def python_dir(self) -> Path:
        return self.path / "python"


# ---------------------------------------------------------------- requirements

def _marker_env(python: str, arch: str) -> Dict[str, str]:
    """PEP 508 marker values of the Lambda runtime (Amazon Linux, CPython ``python``, ``arch``)."""
    full = platform.python_version() if python == _kernel_python() else f"{python}.0"
    return {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
            "platform_machine": PIP_ARCH[arch], "platform_python_implementation": "CPython",
            "implementation_name": "cpython", "implementation_version": full, "platform_release": "",
            "platform_version": "", "python_version": python, "python_full_version": full, "extra": ""}


def _kernel_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _check(python: str, arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise UserInputError(f"unknown architecture {arch!r}", f"use one of {', '.join(ARCHITECTURES)}", WHERE)
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise UserInputError(f"Python version {python!r} is not of the form 3.X", "pass the runtime's minor version, e.g. '3.11'", WHERE)


def layer_requirements(python: str, arch: str, extra: Sequence[str] = ()) -> List[str]:
    """spaCy (and the ``extra`` distributions the pipeline's code needs) with their runtime dependency
    closure, pinned to the kernel's installed versions (``name==version``).

    Markers are evaluated for Linux, ``arch`` and ``python``; extras are not followed. A dependency the
    target needs but the kernel lacks (another Python's backport) is kept with its specifier unpinned.
    """
    _check(python, arch)
    env = _marker_env(python, arch)
    pins: Dict[str, str] = {}
    todo = [Requirement("spacy")] + [Requirement(name) for name in extra]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in pins or name in NOT_AT_RUNTIME:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            if name == "spacy":
                raise UserInputError("spaCy is not installed in this kernel", "pip install spacy in the kernel's environment", WHERE)
            pins[name] = f"{name}{req.specifier}"
            continue
        pins[name] = f"{name}=={dist.version}"
        for line in dist.requires or []:
            dep = Requirement(line)
            if dep.marker is None or Marker(str(dep.marker)).evaluate(env):
                todo.append(dep)
    return sorted(pins.values())


def layer_key(pins: Sequence[str], python: str, arch: str, langs: Optional[Sequence[str]] = None) -> str:
    """The cache key: what the layer holds and the tools that made it (a fixed strip tool misses old entries,
    and so does a layer built without .pyc once an interpreter of the runtime's minor is here)."""
    from .interpreters import find_python

    text = json.dumps({"pins": sorted(pins), "python": python, "arch": arch, "builder": BUILDER_VERSION,
                       "langs": sorted(langs) if langs else "all", "strip": strip_identity(arch),
                       "pyc": bool(find_python(python))}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def default_cache_dir() -> Path:
    from ...core.paths import nimbus_home

    return nimbus_home() / "cache" / "layers"


# ---------------------------------------------------------------- the build

def build_layer(python: str, arch: str, cache_dir: Optional[Path] = None, on_step: Optional[OnStep] = None,
                pins: Optional[Sequence[str]] = None, langs: Optional[Sequence[str]] = None) -> LayerBuild:
    """Return the layer for (pins, arch, python, langs), building it once: later calls are cache hits.

    ``pins`` defaults to ``layer_requirements(python, arch)``. ``langs`` (e.g. ``["en"]``, the pipeline's
    ``nlp.lang``) keeps only those spacy.lang packages (plus the ones ``import spacy`` itself imports):
    the other ~70 languages are 7 MB a pipeline never loads; ``None`` keeps all. Two kernels asking at
    once build it once (a file lock per key); a build is renamed into place only when complete.
    """
    started = time.perf_counter()
    _check(python, arch)
    pins = sorted(pins) if pins is not None else layer_requirements(python, arch)
    langs = sorted(set(langs)) if langs else None
    key = layer_key(pins, python, arch, langs)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / key
    step = on_step or (lambda name, detail: None)
    with FileLock(str(cache_dir / f"{key}.lock")):
        if (final / META_FILE).is_file():
            step("cached", str(final))
            return _from_meta(final, cached=True, seconds=time.perf_counter() - started)
        shutil.rmtree(final, ignore_errors=True)  # a stray entry without metadata is not a layer
        work = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=cache_dir))
        try:
            meta = _build(work, pins, python, arch, langs, step)
            meta.update(key=key, build_seconds=round(time.perf_counter() - started, 3))
            (work / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), "utf-8")
            os.rename(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    step("done", str(final))
    return _from_meta(final, cached=False, seconds=time.perf_counter() - started)


def _build(work: Path, pins: Sequence[str], python: str, arch: str, langs: Optional[Sequence[str]], step: OnStep) -> dict:
    target = work / "python"
    notes: List[str] = []
    step("download", f"{len(pins)} packages for Python {python} on {arch}")
    _pip_install(target, pins, python, arch)
    raw = dir_size(target)
    step("trim", "tests, sources, headers" + (f", languages other than {', '.join(langs)}" if langs else ""))
    trim(target)
    imported = imported_by_spacy()
    if langs:
        if imported:
            trim_languages(target, langs, imported)
        else:
            notes.append("kept every spaCy language: could not measure which ones `import spacy` imports")
    trimmed = dir_size(target)
    step("strip", "the packages' own shared objects")
    stripped, note = strip_shared_objects(target, arch)
    notes += [note] if note else []
    bad = check_shared_objects(target, arch)
    if bad:
        listed = "; ".join(f"{path}: {', '.join(problems)}" for path, problems in sorted(bad.items())[:5])
        raise UserInputError(f"{len(bad)} shared object(s) in the {arch} layer would not load on Lambda: {listed}",
                             "install GNU binutils for the target (apt-get install binutils-aarch64-linux-gnu) and deploy "
                             "again; report it if the files come so from PyPI", WHERE)
    stripped_bytes = dir_size(target)
    from .interpreters import find_python

    interpreter = find_python(python)
    compiled = False
    if interpreter:
        step("compile", f"unchecked-hash .pyc with Python {python}")
        compiled, note = precompile(target, imported, interpreter)
    else:
        note = (f".pyc not precompiled: no Python {python} on this machine (the kernel runs {_kernel_python()}); "
                f"set NIMBUS_PYTHON_{python.replace('.', '_')} to one, or cold starts compile every module")
    notes += [note] if note else []
    return {"python": python, "arch": arch, "pins": list(pins), "langs": langs, "raw_bytes": raw, "trimmed_bytes": trimmed,
            "stripped_bytes": stripped_bytes, "stripped": stripped, "compiled": compiled, "notes": notes,
            "builder": BUILDER_VERSION}


def _from_meta(path: Path, cached: bool, seconds: float) -> LayerBuild:
    meta = json.loads((path / META_FILE).read_text("utf-8"))
    return LayerBuild(path=path, key=meta["key"], cached=cached, python=meta["python"], arch=meta["arch"], langs=meta["langs"],
                      pins=meta["pins"], raw_bytes=meta["raw_bytes"], trimmed_bytes=meta["trimmed_bytes"],
                      stripped_bytes=meta["stripped_bytes"], unzipped_bytes=dir_size(path), seconds=seconds,
                      build_seconds=meta["build_seconds"], stripped=meta["stripped"], compiled=meta["compiled"],
                      notes=meta["notes"])


# ---------------------------------------------------------------- pip

_NETWORK = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
            "Name or service not known", "ConnectTimeoutError", "Read timed out", "ProxyError", "Network is unreachable",
            "Could not fetch URL", "SSLError")


def runtime_glibc(python: str) -> int:
    """The glibc minor version of the Lambda runtime for ``python`` (2.26 on AL2, 2.34 on AL2023)."""
    from .runtimes import RUNTIMES

    for runtime in RUNTIMES:
        if runtime.python == python:
            return runtime.glibc[1]
    return AL2_GLIBC if tuple(int(p) for p in python.split(".")) <= (3, 11) else AL2023_GLIBC


def pip_platforms(python: str, arch: str) -> List[str]:
    """Every manylinux tag the runtime can load, newest first: pip does not widen ``manylinux_2_28``
    to older glibc versions by itself (it only widens manylinux2014 to 2010 and 1)."""
    machine = PIP_ARCH[arch]
    return [f"manylinux_2_{minor}_{machine}" for minor in range(runtime_glibc(python), 16, -1)] + [f"manylinux2014_{machine}"]


def _pip_cmd(target: Path, python: str, arch: str, *extra: str) -> List[str]:
    platforms = [arg for tag in pip_platforms(python, arch) for arg in ("--platform", tag)]
    # --no-deps: the pins are the whole closure already; letting pip resolve again could pull in
    # versions the kernel does not run.
    return [sys.executable, "-m", "pip", "install", "--target", str(target), *platforms, "--only-binary=:all:",
            "--python-version", python, "--implementation", "cp", "--no-compile", "--no-deps",
            "--disable-pip-version-check", "--no-input", *extra]


def _pip_install(target: Path, pins: Sequence[str], python: str, arch: str) -> None:
    proc = subprocess.run(_pip_cmd(target, python, arch, *pins), capture_output=True, text=True)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        missing = _all_missing(target, pins, python, arch, output)
        raise pip_error(output, python, arch, missing)


def _all_missing(target: Path, pins: Sequence[str], python: str, arch: str, output: str) -> Dict[str, str]:
    """Every pin without a wheel (pip names only the first), with pip's list of versions that have one,
    so the user fixes them all at once. Dry runs only; stops when the rest resolves or after 10."""
    found: Dict[str, str] = {}
    while len(found) < 10:
        hit = re.search(r"No matching distribution found for (\S+)", output)
        if not hit or hit.group(1) in found or any(m in output for m in _NETWORK):
            break
        versions = re.search(r"requirement " + re.escape(hit.group(1)) + r" \(from versions: ([^)]*)\)", output)
        found[hit.group(1)] = versions.group(1) if versions else ""
        rest = [p for p in pins if p not in found]
        proc = subprocess.run(_pip_cmd(target.with_name("dry-run"), python, arch, "--dry-run", *rest),
                              capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if proc.returncode == 0:
            break
    return found


def _runtime_text(python: str, arch: str) -> str:
    os_name = "Amazon Linux 2" if runtime_glibc(python) == AL2_GLIBC else "Amazon Linux 2023"
    return f"Lambda python{python} on {arch} ({os_name}, glibc 2.{runtime_glibc(python)}; cp{python.replace('.', '')} manylinux wheels)"


def _newest_below(pin: str, versions: str) -> Optional[str]:
    """The newest final release in pip's list that is older than the pinned one: the version to install instead."""
    from packaging.version import InvalidVersion, Version

    name, _, current = pin.partition("==")
    try:
        ceiling = Version(current) if current else None
    except InvalidVersion:
        ceiling = None
    good = []
    for text in versions.split(","):
        try:
            v = Version(text.strip())
        except InvalidVersion:
            continue
        if not v.is_prerelease and (ceiling is None or v < ceiling):
            good.append(v)
    return f"{name}=={max(good)}" if good else None


def pip_error(output: str, python: str, arch: str, missing: Optional[Dict[str, str]] = None) -> UserInputError:
    """The user's next step from pip's output: which packages lack a wheel, or that PyPI is unreachable."""
    runtime = _runtime_text(python, arch)
    if any(marker in output for marker in _NETWORK):
        return UserInputError(
            f"PyPI is unreachable, so the layer's wheels for {runtime} cannot be downloaded",
            "check the network, proxy (HTTPS_PROXY) or pip's index settings (pip config list), then deploy again; "
            "a layer built once is cached and needs no network", WHERE)
    if missing is None:
        missing = {m: "" for m in re.findall(r"No matching distribution found for (\S+)", output)}
    if missing:
        instead = [alt for alt in (_newest_below(p, v) for p, v in missing.items()) if alt]
        todo = (f"install {' '.join(instead)} in the kernel (the kernel and Lambda must run the same versions), "
                "restart it and deploy again" if len(instead) == len(missing) else
                f"install versions of {', '.join(p.split('==')[0] for p in missing)} in the kernel that ship such wheels, "
                "restart it and deploy again")
        if runtime_glibc(python) == AL2_GLIBC:
            todo += f"; or deploy with --python 3.12 or newer, whose Lambda runtime has glibc 2.{AL2023_GLIBC}"
        return UserInputError(f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no wheel on PyPI for {runtime}",
                              todo, WHERE)
    tail = "\n".join(output.strip().splitlines()[-8:])
    return UserInputError(f"pip could not download the layer's wheels for {runtime}:\n{tail}",
                          "read pip's message above; fix the kernel's packages or pip's settings, then deploy again", WHERE)


def _shorten(versions: str, keep: int = 6) -> str:
    items = [v.strip() for v in versions.split(",") if v.strip()]
    return ", ".join(items) if len(items) <= keep else "..., " + ", ".join(items[-keep:])


# ---------------------------------------------------------------- trim, strip, compile

def trim(python_dir: Path) -> List[Path]:
    """Delete test suites, ``__pycache__``, Cython/C sources, headers, stubs and static libraries.

    Nothing imported at run time lives there: spaCy, thinc and numpy import their tests only under
    pytest, and .pyx/.pxd/.h/.a are build inputs. ``*.dist-info`` stays whole (entry points and
    METADATA are read by spaCy's registries and importlib.metadata).
    """
    removed: List[Path] = []
    for pattern in TRIM_GLOBS:
        for path in python_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path)
    for root, dirs, files in os.walk(python_dir, topdown=True):
        if root.endswith(".dist-info"):
            dirs[:] = []
            continue
        for name in list(dirs):
            if name in TRIM_DIRS and root != str(python_dir):
                shutil.rmtree(os.path.join(root, name))
                removed.append(Path(root, name))
                dirs.remove(name)
        for name in files:
            if name.endswith(TRIM_SUFFIXES):
                os.remove(os.path.join(root, name))
                removed.append(Path(root, name))
    return removed


def trim_languages(python_dir: Path, langs: Sequence[str], imported: Sequence[str]) -> List[str]:
    """Delete spacy/lang/<code>/ for every language not in ``langs`` and not referred to by spaCy itself:
    ``import spacy`` imports some, and spacy/registrations.py imports ja, ko, th, vi, zh when the first
    registry lookup fills the registry, so every ``.lang.X`` named in spaCy's own modules is kept, and
    every language a kept one imports (nb from da, uk from ru)."""
    lang_dir = python_dir / "spacy" / "lang"
    codes = {p.name for p in lang_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    keep = set(langs) | {m.split(".")[2] for m in imported if m.startswith("spacy.lang.") and m.count(".") >= 2}
    spacy_own = [p for p in (python_dir / "spacy").rglob("*.py") if lang_dir not in p.parents]
    keep |= _lang_refs(spacy_own, codes)
    todo = list(keep & codes)
    while todo:
        found = _lang_refs((lang_dir / todo.pop()).rglob("*.py"), codes) - keep
        keep |= found
        todo += found
    removed = sorted(codes - keep)
    for code in removed:
        shutil.rmtree(lang_dir / code)
    return removed


def _lang_refs(sources, codes: set) -> set:
    pattern = re.compile(r"(?:from \.\.|\.lang\.|spacy\.lang\.|from \.\.\.lang\.)(\w+)")
    refs = set()
    for source in sources:
        refs.update(code for code in pattern.findall(source.read_text("utf-8", "replace")) if code in codes)
    return refs


def own_shared_objects(python_dir: Path) -> List[Path]:
    """The packages' own extension modules; never what is inside ``*.libs/`` (auditwheel's vendored,
    hash-named libraries such as numpy's OpenBLAS: stripping those breaks them)."""
    found = []
    for root, dirs, files in os.walk(python_dir):
        dirs[:] = [d for d in dirs if not d.endswith(".libs") and not d.endswith(".dist-info")]
        found += [Path(root, n) for n in files if n.endswith(".so") or ".so." in n]
    return sorted(p for p in found if not p.is_symlink())


HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def strip_tool(arch: str) -> Optional[str]:
    """GNU strip for ``arch``'s ELF files: the host's ``strip`` when it is GNU binutils for the same arch,
    else Debian's cross binutils (``aarch64-linux-gnu-strip`` / ``x86_64-linux-gnu-strip``). Never
    llvm-strip: it rewrites auditwheel-patched program headers so that glibc refuses to map them."""
    host = HOST_ARCH.get(platform.machine().lower())
    candidates = [f"{PIP_ARCH[arch]}-linux-gnu-strip"] + (["strip"] if host == arch else [])
    for name in candidates:
        path = shutil.which(name)
        if path and "GNU" in _tool_version(path):
            return path
    return None


def _tool_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0].strip() if out else ""


def strip_identity(arch: str) -> str:
    """The strip tool and its version, as the layer cache key holds it: a fixed tool misses old entries."""
    tool = strip_tool(arch)
    return f"{os.path.basename(tool)}: {_tool_version(tool)}" if tool else "none"


def strip_shared_objects(python_dir: Path, arch: str) -> Tuple[bool, str]:
    """``strip --strip-unneeded`` each of the packages' own .so files into a copy, keep the copy only when
    its ELF program headers still load (``elf.load_problems``); returns (stripped, note)."""
    from .elf import load_problems

    tool = strip_tool(arch)
    if tool is None:
        return False, (f"not stripped: no GNU strip for {arch} ELF files here (install binutils-{PIP_ARCH[arch]}-linux-gnu); "
                       "llvm-strip is not used, it breaks auditwheel-patched modules")
    failed, refused = [], []
    for path in own_shared_objects(python_dir):
        out = path.with_name(path.name + ".stripped")
        proc = subprocess.run([tool, "--strip-unneeded", "-o", str(out), str(path)], capture_output=True, text=True)
        problems = load_problems(out, arch) if proc.returncode == 0 and out.exists() else []
        if proc.returncode != 0 or problems:
            (refused if problems else failed).append(os.path.relpath(path, python_dir))
            out.unlink(missing_ok=True)
            continue
        os.chmod(out, path.stat().st_mode)
        os.replace(out, path)
    name = os.path.basename(tool)
    notes = [f"{name} failed on {len(failed)} file(s), left as they were: {failed[:5]}" if failed else "",
             f"{len(refused)} stripped file(s) would not load, kept unstripped: {refused[:5]}" if refused else ""]
    return True, "; ".join(n for n in notes if n)


def check_shared_objects(python_dir: Path, arch: str) -> Dict[str, List[str]]:
    """Every .so in the layer (vendored ``*.libs`` too) that the target's loader would refuse: {path: problems}."""
    from .elf import load_problems

    bad = {}
    for root, dirs, files in os.walk(python_dir):
        dirs[:] = [d for d in dirs if not d.endswith(".dist-info")]
        for name in files:
            path = Path(root, name)
            if (name.endswith(".so") or ".so." in name) and not path.is_symlink():
                problems = load_problems(path, arch)
                if problems:
                    bad[os.path.relpath(path, python_dir)] = problems
    return bad


def imported_by_spacy() -> List[str]:
    """Module names ``import spacy`` imports, measured in a fresh kernel-Python process (the layer pins
    the kernel's versions, so the set is the layer's; an arm64 layer cannot be imported here)."""
    code = "import json, sys, spacy, thinc.api; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else []


_COMPILE = r"""
import compileall, json, py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
dirs, files = json.loads(sys.stdin.read())
ok = all([bool(compileall.compile_dir(d, quiet=2, workers=0, invalidation_mode=mode)) for d in dirs]
         + [bool(compileall.compile_file(f, quiet=2, invalidation_mode=mode)) for f in files])
print(json.dumps(ok))
"""


def precompile(python_dir: Path, modules: Optional[Sequence[str]] = None,
               interpreter: Optional[str] = None) -> Tuple[bool, str]:
    """Write unchecked-hash .pyc (valid whatever mtimes the unzip gives, never rewritten on read-only /opt)
    for ``COMPILE_WHOLE`` and ``modules`` (default: what ``import spacy`` imports); the rest compile in
    memory if ever imported. ``interpreter`` (default: this one) must be the runtime's minor: a .pyc
    carries its interpreter's magic number and cache tag."""
    modules = imported_by_spacy() if modules is None else modules
    dirs = [str(python_dir / top) for top in COMPILE_WHOLE if (python_dir / top).is_dir()]
    files = []
    for name in modules:
        base = python_dir.joinpath(*name.split("."))
        for source in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if source.is_file() and name.split(".")[0] not in COMPILE_WHOLE:
                files.append(str(source))
    proc = subprocess.run([interpreter or sys.executable, "-I", "-S", "-c", _COMPILE], input=json.dumps([dirs, files]),
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return False, f".pyc not precompiled: {interpreter or sys.executable} failed: {proc.stderr.strip()[-300:]}"
    ok = json.loads(proc.stdout.strip().splitlines()[-1])
    note = "" if ok else "some modules did not compile; they are imported from source"
    if not modules:
        note = (note + "; " if note else "") + "could not measure what `import spacy` imports: only the spaCy stack is precompiled"
    return True, note


def layer_metadata(build: LayerBuild) -> dict:
    """The build as JSON-ready data (for plans and the bench)."""
    data = asdict(build)
    data["path"] = str(build.path)
    return data
