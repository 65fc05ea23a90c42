"""Pipeline object -> bundle directory: ``model/`` (``nlp.to_disk``), ``code/`` and ``manifest.json``.

No servers, no AWS, no widgets. The content hash covers the model and the code, so the same
pipeline always gives the same hash and an unchanged redeploy can be recognised as a no-op. The
vocabulary's string store is left out of the hash: it grows with every text the pipeline processes
(a cache of hashed strings) while the pipeline itself stays the same. Components keep their labels
and patterns in their own files, which the hash covers.

"The same" means in any process: a file whose bytes depend on the process's string hashing rather
than on the pipeline is hashed in a canonical form (the files written are spaCy's own, untouched).
Of spaCy's built-in factories only the sentencizer has such state (its ``punct_chars`` set, in its
JSON file and, when given as a list made from a set, in ``config.cfg``); tests/test_content_hash.py
builds every built-in factory under several ``PYTHONHASHSEED``s to keep it that way.

Writing the same pipeline again is skipped within a process: the last few bundles built are kept as
hard links under ``$NIMBUS_CACHE/bundles`` by the pipeline's in-memory fingerprint (``fingerprint.py``),
and a pipeline with the same fingerprint gets their files (checked against their hash) instead of a
``to_disk``. tests/test_fast_redeploy.py changes each kind of state to show a change is never missed.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, List, Optional, Tuple

from .code_capture import capture_pipeline_code
from .errors import UserInputError
from .fingerprint import pipeline_fingerprint
from .paths import nimbus_cache
from ..runtime.fields import PipelineFields
from ..runtime.loader import CODE_DIR, MANIFEST, MODEL_DIR

BUNDLE_FORMAT = 1
_UNHASHED = {MANIFEST, f"{MODEL_DIR}/vocab/strings.json"}
_CORE_PACKAGES = ("spacy", "thinc", "numpy", "srsly", "cymem", "preshed", "murmurhash", "blis", "pydantic")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Dict[str, Any]
    reused: bool = False  # its files came from a bundle built earlier in this process (same fingerprint)

    @property
    def hash(self) -> str:
        return self.manifest["hash"]

    @property
    def size_bytes(self) -> int:
        return self.manifest["size_bytes"]


def require_pipeline(obj: Any, what: str = "the object") -> None:
    """Raise a UserInputError unless ``obj`` is a spaCy ``Language``."""
    from spacy.language import Language

    if not isinstance(obj, Language):
        raise UserInputError(
            f"{what} is a {type(obj).__module__}.{type(obj).__name__}, not a spaCy pipeline (spacy.language.Language)",
            "pass the object that spacy.load(...) or spacy.blank(...) returned",
        )


def build_bundle(nlp: Any, dest: Path, name: str, namespace: Optional[Dict[str, Any]] = None) -> Bundle:
    """Write ``nlp`` to ``dest`` (which must not exist) and return the bundle with its manifest.

    When this process built a bundle of the very same state before (``core/fingerprint.py``: equal
    fingerprints mean equal bundles), its files are linked in instead of writing the pipeline again,
    and their content hash is checked; so an unchanged redeploy costs the fingerprint, not ``to_disk``.
    """
    require_pipeline(nlp)
    code = capture_pipeline_code(nlp, namespace)  # fails before anything is written
    fields = PipelineFields(nlp)
    fingerprint = pipeline_fingerprint(nlp, code)
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        reused = _SNAPSHOTS.fill(fingerprint, tmp, _canonical_forms(nlp))
        if reused is None:
            tmp.mkdir(parents=True, mode=0o700)
            nlp.to_disk(tmp / MODEL_DIR)
            code.write(tmp / CODE_DIR)
            digest, size = _content_hash(tmp, _canonical_forms(nlp))
        else:
            digest, size = reused
        manifest = {
            "format": BUNDLE_FORMAT,
            "name": name,
            "hash": digest,
            "size_bytes": size,
            "lang": nlp.lang,
            "components": list(nlp.pipe_names),
            "factories": {n: nlp.get_pipe_meta(n).factory for n in nlp.pipe_names},
            "fields": {"default": fields.default_fields(), "available": fields.available_fields()},
            "python": platform.python_version(),
            "packages": _package_versions(nlp),
            "code": {"modules": code.modules, "captured": code.captured},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if reused is None and fingerprint is not None:
        _SNAPSHOTS.keep(fingerprint, dest, digest)
    return Bundle(dest, manifest, reused is not None)


class _Snapshots:
    """Bundles built in this process, by fingerprint: hard links to their files under
    ``$NIMBUS_CACHE/bundles/<pid>-<fingerprint>`` (no copy), the last few only, removed at exit."""

    LIMIT = 3

    def __init__(self) -> None:
        self.entries: "OrderedDict[str, Tuple[Path, str]]" = OrderedDict()
        self._root: Optional[Path] = None

    def root(self) -> Path:
        if self._root is None:
            self._root = nimbus_cache() / "bundles"
            self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
            for old in self._root.iterdir():  # left by processes that died without their atexit
                pid = old.name.split("-", 1)[0]
                if pid.isdigit() and not _pid_alive(int(pid)):
                    shutil.rmtree(old, ignore_errors=True)
            atexit.register(self.clear)
        return self._root

    def keep(self, fingerprint: str, bundle_dir: Path, digest: str) -> None:
        try:
            path = self.root() / f"{os.getpid()}-{fingerprint[:32]}"
            shutil.rmtree(path, ignore_errors=True)
            _link_tree(bundle_dir, path, skip={MANIFEST})
        except OSError:
            return  # a cache: without it the next deploy writes the bundle again
        self.entries[fingerprint] = (path, digest)
        self.entries.move_to_end(fingerprint)
        while len(self.entries) > self.LIMIT:
            _, (old, _) = self.entries.popitem(last=False)
            shutil.rmtree(old, ignore_errors=True)

    def fill(self, fingerprint: Optional[str], dest: Path, canonical: Dict[str, "Canonical"]) -> Optional[Tuple[str, int]]:
        """Link the snapshot's files into ``dest`` and return (hash, size), if there is one whose files
        still hash as they did; else None (and ``dest`` does not exist)."""
        entry = self.entries.get(fingerprint) if fingerprint else None
        if entry is None:
            return None
        path, digest = entry
        try:
            _link_tree(path, dest)
            found, size = _content_hash(dest, canonical)
        except OSError:
            found, size = "", 0
        if found != digest:  # the cache was tampered with or half removed: write the bundle instead
            shutil.rmtree(dest, ignore_errors=True)
            self.entries.pop(fingerprint, None)  # type: ignore[arg-type]
            return None
        return digest, size

    def clear(self) -> None:
        for path, _ in self.entries.values():
            shutil.rmtree(path, ignore_errors=True)
        self.entries.clear()


_SNAPSHOTS = _Snapshots()


def _link_tree(src: Path, dest: Path, skip: frozenset = frozenset()) -> None:
    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:  # another file system: copy
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link, ignore=lambda d, names: [n for n in names if n in skip and Path(d) == src])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except OSError:
        return True


def load_manifest(path: Path) -> Dict[str, Any]:
    return json.loads((Path(path) / MANIFEST).read_text("utf-8"))


Canonical = Callable[[bytes], bytes]


def _content_hash(root: Path, canonical: Optional[Dict[str, Canonical]] = None) -> tuple:
    """sha256 over relative paths and bytes of every file, in a fixed order; and the total size.
    A file named in ``canonical`` is hashed in the form its function gives (see ``_canonical_forms``)."""
    canonical = canonical or {}
    digest = hashlib.sha256()
    size = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        size += len(data)
        if rel in _UNHASHED:
            continue
        if rel in canonical:
            data = canonical[rel](data)
        digest.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest(), size


def _canonical_forms(nlp: Any) -> Dict[str, Canonical]:
    """The bundle files whose bytes spaCy writes in a per-process order, and how to hash them."""
    from spacy.pipeline import Sentencizer

    sentencizers = [name for name, pipe in nlp.components if isinstance(pipe, Sentencizer)]
    forms: Dict[str, Canonical] = {}
    for name in sentencizers:
        # Sentencizer.to_disk writes list(self.punct_chars), a set, to <name> with a .json suffix
        rel = PurePosixPath(MODEL_DIR, name).with_suffix(".json").as_posix()
        forms[rel] = _sorted_json_list("punct_chars")
    if sentencizers:
        forms[f"{MODEL_DIR}/config.cfg"] = lambda data: _config_with_sorted_punct(data, sentencizers)
    return forms


def _sorted_json_list(key: str) -> Canonical:
    def canonical(data: bytes) -> bytes:
        try:
            value = json.loads(data)
        except ValueError:
            return data
        if isinstance(value, dict) and isinstance(value.get(key), list):
            value[key] = sorted(value[key], key=str)
        return json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return canonical


def _config_with_sorted_punct(data: bytes, components: List[str]) -> bytes:
    """config.cfg with each sentencizer's ``punct_chars`` (a set to spaCy) sorted."""
    from thinc.api import Config

    try:
        config = Config().from_str(data.decode("utf-8"), interpolate=False)
    except Exception:  # not ours to judge: hash it as written
        return data
    changed = False
    for name in components:
        section = config.get("components", {}).get(name, {})
        if isinstance(section.get("punct_chars"), list):
            section["punct_chars"] = sorted(section["punct_chars"], key=str)
            changed = True
    return config.to_str().encode("utf-8") if changed else data


def _package_versions(nlp: Any) -> Dict[str, str]:
    """Exact versions of spaCy's stack and of any installed package that provides a component."""
    names = set(_CORE_PACKAGES)
    for pipe_name in nlp.pipe_names:
        module = type(nlp.get_pipe(pipe_name)).__module__.split(".")[0]
        names.update(_providers_of(module))
    out = {}
    for dist in sorted(names):
        version = _dist_version(dist)
        if version is not None:
            out[dist] = version
    return out


_DISTRIBUTIONS: Dict[str, Any] = {}


def _installed_state() -> Tuple:
    """What an install or uninstall changes: the modification times of the import path's directories."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, 0))
    return tuple(state)


def _providers_of(module: str) -> List[str]:
    """The installed distributions that provide top-level ``module``. Most components come from a
    package named like its module (spacy's own, spacy-transformers' ``spacy_transformers``): found by
    name in a millisecond; only other modules (a notebook's own code, a package named otherwise) pay
    for the scan of every installed package's file list (0.3-0.6 s), and only once."""
    if module in sys.builtin_module_names or module in getattr(sys, "stdlib_module_names", ()):
        return []
    try:
        found = metadata.distribution(module)
    except (metadata.PackageNotFoundError, ValueError):
        found = None
    if found is not None and module in (found.read_text("top_level.txt") or module).split():
        return [found.metadata["Name"]]
    return list(_packages_distributions().get(module, []))


def _packages_distributions() -> Dict[str, List[str]]:
    """``metadata.packages_distributions()`` (0.1-0.4 s: it reads every installed package's file list),
    once per state of the installed packages."""
    key = _installed_state()
    if _DISTRIBUTIONS.get("key") != key:
        _DISTRIBUTIONS.clear()
        _DISTRIBUTIONS.update(key=key, providers=metadata.packages_distributions(), versions={})
    return _DISTRIBUTIONS["providers"]


def _dist_version(dist: str) -> Optional[str]:
    versions = _DISTRIBUTIONS.setdefault("versions", {})
    if dist not in versions:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions[dist]
