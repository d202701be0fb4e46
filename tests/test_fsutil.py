"""One intake at a time per organisation: the folder lock and unique temporary names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from playbook.errors import PlaybookError
from playbook.fsutil import FolderBusy, folder_lock, partial_path


def test_second_holder_stops_with_a_plain_message(tmp_path: Path) -> None:
    folder = tmp_path / "canonical"
    with folder_lock(folder) as lock:
        assert lock == folder / ".lock"
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(FolderBusy) as err:
            with folder_lock(folder):
                pass  # pragma: no cover - must not get here
    msg = str(err.value)
    assert isinstance(err.value, PlaybookError)
    assert f"another intake of this organisation is running (pid {os.getpid()})" in msg.lower()
    assert "wait for it to finish" in msg
    # released: the next holder gets it, and the lock file is left empty
    with folder_lock(folder):
        pass
    assert (folder / ".lock").read_text() == ""


def test_lock_is_held_against_another_process(tmp_path: Path) -> None:
    folder = tmp_path / "canonical"
    script = textwrap.dedent(
        f"""
        import sys, time
        from playbook.fsutil import folder_lock
        with folder_lock({str(folder)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusy, match=rf"\(pid {child.pid}\)"):
            with folder_lock(folder):
                pass  # pragma: no cover
    finally:
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(timeout=30)
    with folder_lock(folder):  # free once the other process is done
        pass


def test_waiting_holder_gets_the_lock_when_the_first_is_done(tmp_path: Path) -> None:
    folder = tmp_path / "canonical"
    order: list[str] = []
    ready = threading.Event()

    def first() -> None:
        with folder_lock(folder):
            ready.set()
            time.sleep(0.5)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    ready.wait(5)
    with folder_lock(folder, wait=10, poll=0.05):
        order.append("second in")
    t.join()
    assert order == ["first done", "second in"]


def test_partial_names_are_unique_and_not_parquet(tmp_path: Path) -> None:
    final = tmp_path / "canonical" / "order_lines.parquet"
    a, b = partial_path(final), partial_path(final)
    assert a != b and a.parent == final.parent
    assert a.name.startswith(".order_lines.parquet.") and a.name.endswith(".partial")
    assert str(os.getpid()) in a.name
    assert not a.match("*.parquet")
