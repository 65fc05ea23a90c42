"""Pipeline object -> bundle directory: ``model/`` (``nlp.to_disk``), ``code/`` and ``manifest.json``.

Pure: no servers, no AWS, no widgets. The content hash covers the model and the code, so the same
pipeline always gives the same hash and an unchanged redeploy can be recognised as a no-op. The
vocabulary's string store is left out of the hash: it grows with every text the pipeline processes
(a cache of hashed strings) while the pipeline itself stays the same. Components keep their labels
and patterns in their own files, which the hash covers.

"The same" means in any process: a file whose bytes depend on the process's string hashing rather
than on the pipeline is hashed in a canonical form (the files written are spaCy's own, untouched).
Of spaCy's built-in factories only the sentencizer has such state (its ``punct_chars`` set, in its
JSON file and, when given as a list made from a set, in ``config.cfg``); tests/test_content_hash.py
builds every built-in factory under several ``PYTHONHASHSEED``s to keep it that way.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, List, Optional

from .code_capture import capture_pipeline_code
from .errors import UserInputError
from ..runtime.fields import PipelineFields
from ..runtime.loader import CODE_DIR, MANIFEST, MODEL_DIR

BUNDLE_FORMAT = 1
_UNHASHED = {MANIFEST, f"{MODEL_DIR}/vocab/strings.json"}
_CORE_PACKAGES = ("spacy", "thinc", "numpy", "srsly", "cymem", "preshed", "murmurhash", "blis", "pydantic")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Dict[str, Any]

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
    """Write ``nlp`` to ``dest`` (which must not exist) and return the bundle with its manifest."""
    require_pipeline(nlp)
    code = capture_pipeline_code(nlp, namespace)  # fails before anything is written
    fields = PipelineFields(nlp)
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True, mode=0o700)
        nlp.to_disk(tmp / MODEL_DIR)
        code.write(tmp / CODE_DIR)
        digest, size = _content_hash(tmp, _canonical_forms(nlp))
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
    return Bundle(dest, manifest)


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
    providers = metadata.packages_distributions()
    for pipe_name in nlp.pipe_names:
        module = type(nlp.get_pipe(pipe_name)).__module__.split(".")[0]
        names.update(providers.get(module, []))
    out = {}
    for dist in sorted(names):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
