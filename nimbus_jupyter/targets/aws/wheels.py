"""Does every pinned package have a wheel a given Lambda runtime can load? Asked of the package index.

Why not run pip for each runtime: pip stops at the first pin it cannot satisfy, so naming them all takes
one pip run per pin. The index's simple API (PEP 691 JSON, what pip itself reads) lists every file of a
project in one request; ``packaging.tags`` says which wheel tags CPython ``X.Y`` on manylinux with the
runtime's glibc accepts, exactly as pip decides. Answers are cached on disk (a release's files do not
change once uploaded; a project's listing is refreshed after a day), so a repeated plan asks nothing.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ...core.errors import UserInputError

PIP_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
DEFAULT_INDEX = "https://pypi.org/simple"
LISTING_TTL_S = 24 * 3600
WHERE = "AWS layer"
Fetch = Callable[[str], List[str]]  # project name -> every file name the index lists for it
YANKED = " (yanked)"  # suffix on a listed file name the index marks yanked


def platforms(glibc: Tuple[int, int], arch: str) -> List[str]:
    """manylinux platform tags a system with ``glibc`` accepts, newest first (pip widens 2_28 down to 2_17
    and the legacy aliases itself when it runs *on* that system; here we spell them out)."""
    machine = PIP_ARCH[arch]
    tags = [f"manylinux_{glibc[0]}_{minor}_{machine}" for minor in range(glibc[1], 16, -1)]
    tags.append(f"manylinux2014_{machine}")
    if machine == "x86_64":
        tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    return tags


def supported_tags(python: str, arch: str, glibc: Tuple[int, int]) -> Set[Tag]:
    """Every wheel tag CPython ``python`` on Linux ``arch`` with ``glibc`` can install."""
    version = tuple(int(p) for p in python.split("."))
    plats = platforms(glibc, arch)
    interp = f"cp{version[0]}{version[1]}"
    return set(cpython_tags(version, abis=[interp], platforms=plats)) | set(
        compatible_tags(version, interpreter=interp, platforms=plats))


def loadable(filenames: Iterable[str], python: str, arch: str, glibc: Tuple[int, int],
             version: Optional[str] = None) -> List[str]:
    """The wheels among ``filenames`` (of ``version``, when given) that the runtime can load."""
    tags = supported_tags(python, arch, glibc)
    found = []
    for name in filenames:
        if not name.endswith(".whl"):
            continue
        try:
            _dist, ver, _build, wheel_tags = parse_wheel_filename(name)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if version is not None and ver != Version(version):
            continue
        if wheel_tags & tags:
            found.append(name)
    return found


class WheelIndex:
    """The index's file listings, cached under ``cache_dir``; ``fetch`` is replaceable for tests."""

    def __init__(self, cache_dir: Path, index_url: Optional[str] = None, fetch: Optional[Fetch] = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.index_url = (index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")
        self._fetch = fetch or self._fetch_index
        self.requests = 0  # how many times the index was asked (the cache's effect, for tests)

    def _fetch_index(self, project: str) -> List[str]:
        import requests

        url = f"{self.index_url}/{project}/"
        try:
            reply = requests.get(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=30)
        except requests.RequestException as exc:
            raise UserInputError(f"the package index {self.index_url} is unreachable ({type(exc).__name__}), so nimbus "
                                 "cannot tell which Lambda runtime has wheels for the kernel's packages",
                                 "check the network or PIP_INDEX_URL, or pass --python 3.X to choose the runtime yourself",
                                 WHERE)
        if reply.status_code == 404:
            return []
        reply.raise_for_status()
        # yanked files stay listed, marked: an exact pin still installs one (PEP 592), a range skips it
        return [f["filename"] + (YANKED if f.get("yanked") else "") for f in reply.json().get("files", [])]

    def files(self, project: str) -> List[str]:
        name = canonicalize_name(project)
        path = self.cache_dir / f"{name}.json"
        try:
            cached = json.loads(path.read_text("utf-8"))
            if time.time() - cached["fetched"] < LISTING_TTL_S:
                return cached["files"]
        except (OSError, ValueError, KeyError):
            pass
        self.requests += 1
        files = self._fetch(name)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fetched": time.time(), "files": files}), "utf-8")
        os.replace(tmp, path)
        return files

    def has_wheel(self, pin: str, python: str, arch: str, glibc: Tuple[int, int]) -> bool:
        """Whether ``pin`` (``name==version``, or a specifier for an unpinned backport) has a loadable wheel."""
        req = Requirement(pin)
        files = self.files(req.name)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            return bool(loadable([f.removesuffix(YANKED) for f in files], python, arch, glibc, exact[0]))
        ok = loadable([f for f in files if not f.endswith(YANKED)], python, arch, glibc)
        return any(req.specifier.contains(parse_wheel_filename(f)[1], prereleases=False) for f in ok)

    def missing(self, pins: Sequence[str], python: str, arch: str, glibc: Tuple[int, int]) -> List[str]:
        """The pins without a wheel for that runtime (``runtimes.WheelCheck``)."""
        return [pin for pin in pins if not self.has_wheel(pin, python, arch, glibc)]


def default_index() -> WheelIndex:
    from ...core.paths import nimbus_cache

    return WheelIndex(nimbus_cache() / "wheel-index")

