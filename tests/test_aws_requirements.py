"""The layer carries what the pipeline's own code imports, pinned to the kernel; an import nothing
provides is refused before anything is built."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.targets.aws.layer import layer_requirements
from nimbus_jupyter.targets.aws.requirements import extra_distributions, imported_modules


def _bundle(tmp_path: Path, source: str, packages=None) -> SimpleNamespace:
    code = tmp_path / "bundle" / "code"
    code.mkdir(parents=True)
    (code / "nimbus_notebook.py").write_text(source, "utf-8")
    (code / "helpers.py").write_text("import json\n", "utf-8")
    return SimpleNamespace(path=tmp_path / "bundle", manifest={"packages": packages or {"spacy": "3.8.18"}})


def test_third_party_imports_of_component_code_join_the_layer(tmp_path: Path) -> None:
    from importlib.metadata import version

    bundle = _bundle(tmp_path, "import re\nimport filelock.asyncio\nfrom helpers import x\nfrom . import y\nimport spacy\n")
    assert imported_modules(bundle.path / "code") == {"re", "filelock", "helpers", "json", "spacy"}
    extra = extra_distributions(bundle)
    assert extra == ["filelock", "spacy"]
    pins = layer_requirements("3.11", "x86_64", extra=extra)
    assert f"filelock=={version('filelock')}" in pins  # spaCy's stack does not have it; the kernel's version
    assert set(pins) - set(layer_requirements("3.11", "x86_64")) == {f"filelock=={version('filelock')}"}


def test_an_import_nothing_provides_is_refused(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "import not_a_real_package_xyz\n")
    with pytest.raises(UserInputError) as caught:
        extra_distributions(bundle)
    assert "imports 'not_a_real_package_xyz'" in str(caught.value)
    assert "pip install" in caught.value.todo


def test_a_plain_pipeline_adds_nothing_to_spacys_stack(tmp_path: Path, textcat_nlp) -> None:
    from nimbus_jupyter.core.bundle import build_bundle

    bundle = build_bundle(textcat_nlp, tmp_path / "b", "plain")
    extra = extra_distributions(bundle)
    assert layer_requirements("3.11", "x86_64", extra=extra) == layer_requirements("3.11", "x86_64")
