"""Checkpoint stores that fail never lose results: a damaged file is moved aside and the batch runs; a
failing save (a full disk, a lock held by another process) warns, the batch goes on and returns every
row, and the summary says how many chunks were not saved; a read-only NIMBUS_HOME runs without resume
and says so; resume=False never opens the store; destroy never fails on it. Nothing raw from sqlite3
or the OS reaches the caller. The faults are real: garbage and truncated files, a 160 kB tmpfs, a
second process holding the lock, a read-only bind mount."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

import nimbus_jupyter as nj
from nimbus_jupyter.api.checkpoints import CheckpointStore, CheckpointWarning
from nimbus_jupyter.core.registry import Registry
from pipelines import versioned_pipeline

TEXTS = [f"a phone review number {i}" for i in range(640)]  # 10 chunks of 64


@pytest.fixture(scope="module")
def scorer(nimbus_home):
    return nj.deploy(versioned_pipeline("ONE"), "stores", workers=1, show=False)


@pytest.fixture()
def store_path(scorer) -> Iterator[Path]:
    """The home's checkpoint file, fresh for each test (and whatever a test moved aside, removed after)."""
    path = Registry().home / "checkpoints.sqlite"
    _clear(path)
    yield path
    _clear(path)


def _clear(path: Path) -> None:
    for found in path.parent.glob(path.name + "*"):
        if found.is_dir() and not found.is_symlink():
            shutil.rmtree(found)
        else:
            found.unlink()


def complete(frame) -> bool:
    return len(frame) == len(TEXTS) and (frame.error == "").all() and frame.text.tolist() == TEXTS


def store_warnings(record) -> list:
    return [str(w.message) for w in record if issubclass(w.category, CheckpointWarning)]


@contextmanager
def mounted(*args: str) -> Iterator[None]:
    target = args[-1]
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"needs mount (root): {done.stderr.strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", target]).returncode:  # still busy: detach it now, gone when released
            subprocess.run(["umount", "-l", target], check=True)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_moved_aside_with_a_warning_and_the_batch_runs(scorer, store_path, damage):
    if damage == "garbage":
        store_path.write_bytes(b"not a database at all " * 500)
    else:
        nj.batch(TEXTS, "stores", progress=False)  # a real store with 10 saved chunks
        size = store_path.stat().st_size
        with open(store_path, "r+b") as fh:
            fh.truncate(size // 2)
    damaged = store_path.read_bytes()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        df = nj.batch(TEXTS, "stores", progress=False)
    assert complete(df) and df.attrs["nimbus"].chunks_reused == 0 and df.attrs["nimbus"].resume == "on"
    [message] = store_warnings(record)
    aside = list(store_path.parent.glob("checkpoints.sqlite.corrupt-*"))
    assert len([a for a in aside if not a.name.endswith(("-wal", "-shm"))]) == 1
    assert f"the checkpoint store {store_path} is damaged" in message and f"moved aside to {aside[0].name}" in message
    assert any(a.read_bytes() == damaged for a in aside)  # kept as it was, for a post-mortem
    again = nj.batch(TEXTS, "stores", progress=False)  # the new store works
    assert complete(again) and again.attrs["nimbus"].chunks_reused == 10


def test_no_resume_never_opens_the_store(scorer, store_path):
    store_path.write_bytes(b"garbage " * 100)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        df = nj.batch(TEXTS, "stores", resume=False, progress=False)
    assert complete(df) and not store_warnings(record)
    assert df.attrs["nimbus"].resume == "off (resume=False)" and "resume off (resume=False)" in df.attrs["nimbus"].text()
    assert store_path.read_bytes() == b"garbage " * 100 and not list(store_path.parent.glob("*.corrupt-*"))


def test_a_full_disk_warns_keeps_going_and_says_how_many_chunks_were_not_saved(scorer, store_path, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=160k,mode=0700", "tmpfs", str(disk)):
        store_path.symlink_to(disk / "checkpoints.sqlite")  # the store's file on a tiny disk
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            df = nj.batch(TEXTS, "stores", progress=False)
        summary = df.attrs["nimbus"]
        assert complete(df)  # every row came back although saving failed
        assert 0 < summary.unsaved <= 10 and summary.chunks == 10
        assert f"{summary.unsaved} finished chunk(s) could not be saved for a later run" in summary.text()
        [message] = store_warnings(record)
        assert f"could not save finished chunks to {store_path}" in message and "the disk is full" in message
        saved = CheckpointStore(store_path)
        assert saved.count("stores") == 10 - summary.unsaved  # what fitted was saved
        saved.close()
        store_path.unlink()


LOCKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nimbus_jupyter.api.checkpoints import CheckpointStore
    store = CheckpointStore(Path(sys.argv[1]))  # the schema, as a batch makes it
    store.db.execute("BEGIN EXCLUSIVE")  # and the write lock, held until killed
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_store_locked_by_another_process_warns_and_the_batch_returns_every_row(scorer, store_path):
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(store_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            df = nj.batch(TEXTS, "stores", progress=False)
    finally:
        locker.kill()
        locker.wait(10)
    summary = df.attrs["nimbus"]
    assert complete(df) and summary.unsaved == 10
    messages = store_warnings(record)
    assert any(f"could not save finished chunks to {store_path}" in m and "another process holds it" in m for m in messages)
    assert summary.seconds < 30  # a lock that stays does not stall every chunk


def test_a_read_only_home_runs_without_resume_and_says_so(scorer, store_path):
    nj.batch(TEXTS[:64], "stores", progress=False)  # a store with one chunk, then the home goes read-only
    home = str(Registry().home)
    with mounted("--bind", home, home):
        subprocess.run(["mount", "-o", "remount,ro,bind", home], check=True)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            df = nj.batch(TEXTS, "stores", progress=False)
        with pytest.raises(OSError):
            (Path(home) / "probe").write_text("x")  # it really is read-only
    summary = df.attrs["nimbus"]
    assert complete(df) and summary.resume.startswith(f"off: cannot open {store_path}")
    [message] = store_warnings(record)
    assert message.startswith("resume is off: cannot open") and "saves nothing for a later run" in message
    assert "resume off: cannot open" in summary.text()


def test_destroy_never_fails_on_a_damaged_store(nimbus_home, store_path):
    nj.deploy(versioned_pipeline("ONE"), "doomed", workers=1, show=False)
    store_path.write_bytes(b"\x00garbage" * 64)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        done = nj.destroy("doomed")
    assert done.startswith("destroyed 'doomed'") and "doomed" not in [d.name for d in nj.list_deployments(remote=False)]
    assert any("is damaged" in m for m in store_warnings(record))


def test_an_interrupt_says_what_was_saved_in_two_lines(scorer, store_path, ip, capsys):
    """In a notebook, Ctrl-C during a batch shows what was kept and how to resume, not a traceback."""
    import _thread
    import threading

    from nimbus_jupyter.core.errors import Interrupted

    ip.user_ns["many"] = [f"interrupted text {i}" for i in range(20_000)]  # ~10 s at ~2,000 rows/s
    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    try:
        result = ip.run_cell("%%nimbus_batch stores\nmany")
    finally:
        timer.cancel()
    assert isinstance(result.error_in_exec, Interrupted) and isinstance(result.error_in_exec, KeyboardInterrupt)
    shown = capsys.readouterr().out
    assert "Traceback" not in shown and "Interrupted: batch: batch on 'stores' interrupted: " in shown
    assert "rows finished; the finished chunks are saved" in shown and "to resume" in shown
    assert len([line for line in shown.splitlines() if line.strip()]) <= 4
