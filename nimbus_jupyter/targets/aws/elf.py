"""ELF checks on a layer's shared objects: is this file one the target's dynamic loader will map?

Why: a strip tool that rewrites program headers badly (llvm-strip on auditwheel-patched numpy modules)
leaves a PT_LOAD segment whose address and file offset disagree modulo the page size. glibc refuses it
at import ("ELF load command address/offset not page-aligned") and Lambda's init fails with
Runtime.ImportModuleError. The same tests glibc's ``_dl_map_segments`` makes are made here on every
stripped file, before a layer is accepted, so a broken file is never shipped.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

PT_LOAD = 1
MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}  # e_machine: EM_X86_64, EM_AARCH64
PAGE = 4096  # Lambda's page size on both architectures; glibc checks against the running kernel's


@dataclass(frozen=True)
class Segment:
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True)
class ElfInfo:
    machine: Optional[str]  # x86_64 | arm64 | None (another machine)
    loads: List[Segment]


def read_elf(path: Path) -> Optional[ElfInfo]:
    """Machine and PT_LOAD segments of a 64-bit little-endian ELF file; None when it is not one."""
    with open(path, "rb") as handle:
        head = handle.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        machine, = struct.unpack_from("<H", head, 0x12)
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    loads = []
    for i in range(phnum):
        if len(table) < (i + 1) * phentsize:
            break
        p_type, _flags, offset, vaddr, _paddr, filesz, memsz, align = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
        if p_type == PT_LOAD:
            loads.append(Segment(offset, vaddr, filesz, memsz, align))
    return ElfInfo(MACHINES.get(machine), loads)


def load_problems(path: Path, arch: Optional[str] = None, size: Optional[int] = None) -> List[str]:
    """What the dynamic loader would refuse in this file (empty: it loads). ``arch`` also checks the machine."""
    info = read_elf(path)
    if info is None:
        return ["not a 64-bit little-endian ELF file"]
    problems = []
    if arch is not None and info.machine != arch:
        problems.append(f"built for {info.machine or 'another machine'}, not {arch}")
    if not info.loads:
        problems.append("no PT_LOAD segment")
    size = Path(path).stat().st_size if size is None else size
    for n, seg in enumerate(info.loads):
        if seg.align % PAGE:
            problems.append(f"PT_LOAD[{n}] alignment {seg.align:#x} is not a multiple of the {PAGE:#x} page")
        if (seg.vaddr - seg.offset) % PAGE:
            problems.append(f"PT_LOAD[{n}] address {seg.vaddr:#x} and offset {seg.offset:#x} differ modulo the page "
                            "(glibc: 'ELF load command address/offset not page-aligned')")
        if seg.offset + seg.filesz > size:
            problems.append(f"PT_LOAD[{n}] runs past the end of the file")
        if seg.memsz < seg.filesz:
            problems.append(f"PT_LOAD[{n}] has a memory size below its file size")
    return problems
