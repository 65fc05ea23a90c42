"""Bundles: a stable content hash, a truthful manifest, and the notebook's component code inside."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import CodeCaptureError, UserInputError
from pipelines import sleepy_pipeline, textcat_pipeline


def test_same_pipeline_same_hash_even_after_it_processed_texts(tmp_path):
    nlp = textcat_pipeline()
    first = build_bundle(nlp, tmp_path / "a", "reviews")
    list(nlp.pipe(["brand new words never seen before zzyzx", "more qqqq"]))  # grows the string store
    second = build_bundle(nlp, tmp_path / "b", "reviews")
    assert first.hash == second.hash


def test_changed_weights_change_the_hash(tmp_path):
    assert build_bundle(textcat_pipeline(epochs=3), tmp_path / "a", "r").hash != \
        build_bundle(textcat_pipeline(epochs=4), tmp_path / "b", "r").hash


def test_manifest_names_versions_and_components(tmp_path):
    import spacy

    bundle = build_bundle(textcat_pipeline(), tmp_path / "b", "reviews")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest == bundle.manifest
    assert manifest["components"] == ["textcat", "entity_ruler"]
    assert manifest["lang"] == "en"
    assert manifest["packages"]["spacy"] == spacy.__version__
    assert manifest["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert manifest["size_bytes"] > 0 and len(manifest["hash"]) == 64
    assert not (tmp_path / "b.partial").exists()


def test_not_a_pipeline_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UserInputError, match="not a spaCy pipeline"):
        build_bundle({"not": "nlp"}, tmp_path / "b", "x")
    assert not (tmp_path / "b").exists()


def test_component_from_a_local_module_is_copied(tmp_path):
    bundle = build_bundle(sleepy_pipeline(0.0), tmp_path / "b", "sleepy")
    assert (tmp_path / "b" / "code" / "pipelines.py").exists()
    assert bundle.manifest["code"]["modules"] == ["pipelines"]


NOTEBOOK_CELLS = [
    "import re\nimport spacy\nfrom spacy.language import Language\nSTOPWORDS = {'the', 'a', 'an'}\nWEIGHT = 2.5",
    "def normalise(text):\n    return re.sub(r'\\s+', ' ', text.lower())",
    textwrap.dedent('''\
        @Language.factory("nimbus_test_counter", default_config={"label": "WORDS"}, assigns=["doc.cats"])
        class WordCounter:
            def __init__(self, nlp, name, label):
                self.label = label

            def __call__(self, doc):
                words = [w for w in normalise(doc.text).split() if w not in STOPWORDS]
                doc.cats[self.label] = len(words) * WEIGHT
                return doc
        '''),
    "nlp = spacy.blank('en')\nnlp.add_pipe('nimbus_test_counter')",
]


def test_notebook_component_is_captured_and_loads_in_a_fresh_process(ip, tmp_path):
    for cell in NOTEBOOK_CELLS:
        assert ip.run_cell(cell).success
    nlp = ip.user_ns["nlp"]
    build_bundle(nlp, tmp_path / "b", "counter", ip.user_ns)
    source = (tmp_path / "b" / "code" / "nimbus_notebook_code.py").read_text()
    assert '@Language.factory("nimbus_test_counter"' in source
    assert "def normalise(text):" in source and "import re" in source
    assert "STOPWORDS = " in source and "WEIGHT = 2.5" in source
    text = "The quick brown fox and a  lazy dog"
    script = ("import json, sys; from nimbus_jupyter.runtime.loader import load_bundle; "
              "nlp, _ = load_bundle(sys.argv[1]); print(json.dumps(nlp(sys.argv[2]).cats))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "b"), text],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout) == nlp(text).cats == {"WORDS": 15.0}


def test_notebook_object_that_cannot_be_shipped_fails_naming_component_and_variable(ip, tmp_path):
    cells = [
        "import spacy, threading\nfrom spacy.language import Language\nLOCK = threading.Lock()",
        "@Language.component('nimbus_test_locked')\ndef locked(doc):\n    with LOCK:\n        return doc",
        "nlp2 = spacy.blank('en')\nnlp2.add_pipe('nimbus_test_locked')",
    ]
    for cell in cells:
        assert ip.run_cell(cell).success
    with pytest.raises(CodeCaptureError) as info:
        build_bundle(ip.user_ns["nlp2"], tmp_path / "b", "locked", ip.user_ns)
    message = str(info.value)
    assert "'nimbus_test_locked'" in message and "'LOCK'" in message and "lock" in message.lower()
    assert not (tmp_path / "b").exists()
