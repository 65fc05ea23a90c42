"""arm64 (and x86_64) layers that load: GNU strip for the target, each stripped .so checked, tool in the key.

The checks run on real extension modules (numpy's, from this kernel) and on a copy whose program header
is moved the way llvm-strip moved auditwheel-patched ones (address and offset no longer congruent).
"""
from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy
import pytest

from nimbus_jupyter.targets.aws import layer
from nimbus_jupyter.targets.aws.elf import PT_LOAD, load_problems, read_elf

NUMPY_SO = sorted(Path(numpy.__file__).parent.glob("_core/_multiarray_umath*.so"))[0]


def _first_load_offset(data: bytes) -> int:
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == PT_LOAD:
            return phoff + i * phentsize
    raise AssertionError("no PT_LOAD")


def test_a_real_extension_module_loads(tmp_path):
    info = read_elf(NUMPY_SO)
    assert info is not None and info.machine == "x86_64" and info.loads
    assert load_problems(NUMPY_SO, "x86_64") == []
    assert load_problems(NUMPY_SO, "arm64") == ["built for x86_64, not arm64"]


def test_a_segment_whose_address_and_offset_disagree_is_refused(tmp_path):
    data = bytearray(NUMPY_SO.read_bytes())
    at = _first_load_offset(data) + 8  # p_offset of the first PT_LOAD
    offset, = struct.unpack_from("<Q", data, at)
    struct.pack_into("<Q", data, at, offset + 0x10)
    broken = tmp_path / "broken.so"
    broken.write_bytes(bytes(data))
    problems = load_problems(broken, "x86_64")
    assert any("not page-aligned" in p for p in problems), problems
    (tmp_path / "text.so").write_text("not elf")
    assert load_problems(tmp_path / "text.so") == ["not a 64-bit little-endian ELF file"]


@pytest.mark.parametrize("arch,tool", [("x86_64", "x86_64-linux-gnu-strip"), ("arm64", "aarch64-linux-gnu-strip")])
def test_strip_tool_is_gnu_binutils_for_the_target_never_llvm(arch, tool):
    found = layer.strip_tool(arch)
    if found is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs binutils-aarch64-linux-gnu)")
    assert "llvm" not in os.path.basename(found)
    assert "GNU" in layer._tool_version(found)
    assert layer.strip_identity(arch).startswith(os.path.basename(found)) and "2." in layer.strip_identity(arch)


def test_strip_keeps_only_copies_that_still_load(tmp_path, monkeypatch):
    pkg = tmp_path / "python" / "pkg"
    pkg.mkdir(parents=True)
    shutil.copy(NUMPY_SO, pkg / "good.so")
    stripped, note = layer.strip_shared_objects(tmp_path / "python", "x86_64")
    assert stripped and note == "" and (pkg / "good.so").stat().st_size < NUMPY_SO.stat().st_size
    assert layer.check_shared_objects(tmp_path / "python", "x86_64") == {}
    # a strip that breaks the headers (as llvm-strip did): the original is kept and the note says so
    monkeypatch.setattr("nimbus_jupyter.targets.aws.elf.load_problems", lambda path, arch=None: ["broken"])
    shutil.copy(NUMPY_SO, pkg / "other.so")
    _, note = layer.strip_shared_objects(tmp_path / "python", "x86_64")
    assert "would not load, kept unstripped" in note and (pkg / "other.so").read_bytes() == NUMPY_SO.read_bytes()


def test_the_strip_tool_is_part_of_the_layer_cache_key(monkeypatch):
    pins = ["spacy==3.8.18"]
    monkeypatch.setattr(layer, "strip_identity", lambda arch: "aarch64-linux-gnu-strip: GNU strip 2.40")
    gnu = layer.layer_key(pins, "3.13", "arm64")
    monkeypatch.setattr(layer, "strip_identity", lambda arch: "none")
    assert layer.layer_key(pins, "3.13", "arm64") != gnu
