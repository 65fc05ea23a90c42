"""The function code the aws target ships, and where the model goes (in the function or in S3).

Real files: the code directory is what Lambda would unzip into /var/task, so the checks are what a
user would look for there: only the runtime of the package, the bundle under bundle/ when inline, and
sizes that decide inline vs s3 against Lambda's 250 MB unzipped and 10,240 MB /tmp limits.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import spacy

from nimbus_jupyter.core.bundle import build_bundle
from nimbus_jupyter.core.errors import UserInputError
from nimbus_jupyter.targets.aws.package import (EPHEMERAL_MAX_MB, MB, UNZIPPED_LIMIT_BYTES, build_function_code,
                                                choose_model_mode, dir_size, size_report)

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "nimbus_jupyter" / "runtime"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return build_bundle(spacy.blank("en"), tmp_path_factory.mktemp("b") / "blank", "blank", namespace={})


def _files(root: Path) -> set:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_inline_code_holds_the_runtime_and_the_bundle_only(bundle, tmp_path):
    code = build_function_code(bundle.path, tmp_path / "code", inline=True)
    files = _files(code)
    runtime = {f"nimbus_jupyter/runtime/{p.name}" for p in RUNTIME_DIR.glob("*.py")}
    assert "nimbus_jupyter/runtime/lambda_entry.py" in runtime and "nimbus_jupyter/runtime/handler.py" in runtime
    bundle_files = {f"bundle/{f}" for f in _files(bundle.path)}
    assert "bundle/manifest.json" in bundle_files
    assert files == {"nimbus_jupyter/__init__.py"} | runtime | bundle_files
    assert (code / "bundle" / "manifest.json").read_bytes() == (bundle.path / "manifest.json").read_bytes()
    assert not (tmp_path / "code.partial").exists()


def test_s3_code_has_no_bundle(bundle, tmp_path):
    code = build_function_code(bundle.path, tmp_path / "code", inline=False)
    assert not (code / "bundle").exists()
    assert {f.split("/")[0] for f in _files(code)} == {"nimbus_jupyter"}
    assert dir_size(code) < 1 * MB


def test_existing_destination_and_missing_bundle_are_refused(bundle, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserInputError, match="already exists"):
        build_function_code(bundle.path, tmp_path / "taken", inline=True)
    with pytest.raises(UserInputError, match="not a bundle"):
        build_function_code(tmp_path / "taken", tmp_path / "code", inline=True)
    assert not (tmp_path / "code").exists()


def test_dir_size_counts_file_bytes(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 234)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert dir_size(tmp_path) == 1234


def test_small_model_goes_inline():
    assert choose_model_mode(120 * MB, 1 * MB, 40 * MB) == ("inline", 512)


def test_model_over_the_unzipped_limit_goes_to_s3_with_tmp_for_zip_and_files():
    layer, code, model = 150 * MB, 1 * MB, 300 * MB
    assert layer + code + model > UNZIPPED_LIMIT_BYTES
    mode, tmp_mb = choose_model_mode(layer, code, model)
    assert mode == "s3"
    assert 2 * 300 < tmp_mb <= EPHEMERAL_MAX_MB  # the zip and the unzipped files are on /tmp at once


def test_just_under_the_limit_keeps_a_margin():
    layer, code = 200 * MB, 1 * MB
    model = UNZIPPED_LIMIT_BYTES - layer - code - 2 * MB  # fits Lambda's limit by 2 MB, inside the margin
    assert choose_model_mode(layer, code, model)[0] == "s3"
    assert choose_model_mode(layer, code, model - 20 * MB)[0] == "inline"


def test_small_s3_model_still_gets_the_default_tmp():
    assert choose_model_mode(235 * MB, 1 * MB, 10 * MB) == ("s3", 512)


def test_layer_too_big_names_the_250_mb_limit():
    with pytest.raises(UserInputError, match="250 MB unzipped limit"):
        choose_model_mode(260 * MB, 1 * MB, 1 * MB)


def test_model_too_big_for_tmp_names_the_ephemeral_limit():
    with pytest.raises(UserInputError, match="10,240 MB ephemeral storage"):
        choose_model_mode(100 * MB, 1 * MB, 6000 * MB)


def test_size_report_reads_as_a_sentence():
    text = size_report(120 * MB, 1 * MB, 300 * MB, "s3")
    assert "layer 120.0 MB" in text and "model 300.0 MB (in S3" in text and "121.0 MB of Lambda's 250 MB" in text
