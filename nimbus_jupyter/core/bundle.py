"""Pipeline object -> bundle directory: ``model/`` (``nlp.to_disk``), ``code/`` and ``manifest.json``.

Pure: no servers, no AWS, no widgets. The content hash covers the model and the code, so the same
pipeline always gives the same hash and an unchanged redeploy can be recognised as a no-op. The
vocabulary's string store is left out of the hash: it grows with every text the pipeline processes
(a cache of hashed strings) while the pipeline itself stays the same. Components keep their labels
and patterns in their own files, which the hash covers.
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
from pathlib import Path
from typing import Any, Dict, Optional

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
        digest, size = _content_hash(tmp)
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


def _content_hash(root: Path) -> tuple:
    """sha256 over relative paths and bytes of every file, in a fixed order; and the total size."""
    digest = hashlib.sha256()
    size = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        size += len(data)
        if rel in _UNHASHED:
            continue
        digest.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest(), size


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
