"""Load a bundle written by ``nimbus_jupyter.core.bundle``: run its captured component code, then spaCy."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

MANIFEST = "manifest.json"
MODEL_DIR = "model"
CODE_DIR = "code"


def read_manifest(bundle_dir: Path) -> Dict[str, Any]:
    return json.loads((Path(bundle_dir) / MANIFEST).read_text("utf-8"))


def load_bundle(bundle_dir: Path) -> Tuple[Any, Dict[str, Any]]:
    """Return ``(nlp, manifest)``. Component code comes first so its factories are registered."""
    import spacy

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    modules = manifest.get("code", {}).get("modules", [])
    if modules:
        code_dir = str(bundle_dir / CODE_DIR)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
        for module in modules:
            importlib.import_module(module)
    nlp = spacy.load(bundle_dir / MODEL_DIR)
    return nlp, manifest
