"""File-system helpers: one writer at a time per organisation, unique temporary names.

Two intakes of the same organisation at once (two terminals, or a batch started twice)
would write, delete and rename the same files under ``canonical/``. :func:`folder_lock`
makes the second one wait or stop with a plain message, and :func:`partial_path` gives
every process its own temporary file names, so even without the lock no process
renames another's half-written file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playbook.errors import PlaybookError

LOCK_NAME = ".lock"


class FolderBusy(PlaybookError):
    """Another process holds the lock on a folder."""


def partial_path(final: str | Path) -> Path:
    """A temporary name beside ``final`` that no other process uses.

    ``canonical/order_lines.parquet`` gives
    ``canonical/.order_lines.parquet.<pid>-<random>.partial``: hidden, unique to this
    process and call, and not matched by ``*.parquet``.
    """
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}-{os.urandom(4).hex()}.partial")


def _busy_message(folder: Path, pid: str, what: str) -> str:
    who = f" (pid {pid})" if pid else ""
    return (
        f"Another {what} is running{who}: it holds '{folder / LOCK_NAME}'.\n"
        "What to do: wait for it to finish, then run this again."
    )


def _read_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@contextmanager
def folder_lock(
    folder: str | Path,
    *,
    wait: float = 0.0,
    what: str = "intake of this organisation",
    poll: float = 0.2,
) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder/.lock`` while the block runs.

    Parameters
    ----------
    folder : str or pathlib.Path
        Folder to lock (created if missing), e.g. an organisation's ``canonical/``.
    wait : float
        Seconds to wait for another holder to finish; 0 stops at once.
    what : str
        What the holder is doing, for the message (``"another intake of this
        organisation is running (pid 1234)"``).
    poll : float
        Seconds between attempts while waiting.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    FolderBusy
        The lock is still held by another process after ``wait`` seconds.

    Notes
    -----
    On Linux and macOS the lock is ``fcntl.flock``: the system releases it when the
    holder ends, even if it crashes, and the lock file is left in place (empty). On other
    systems the lock file itself is the lock (created exclusively, removed at the end);
    if a crash leaves it behind, the message says which process made it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    deadline = time.monotonic() + max(0.0, wait)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if fcntl is not None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        raise FolderBusy(_busy_message(folder, _read_pid(path), what)) from None
                    time.sleep(poll)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            try:
                yield path
            finally:
                os.ftruncate(fd, 0)  # nothing left behind that differs between runs
        finally:
            os.close(fd)  # closing releases the lock
        return
    while True:  # pragma: no cover - Windows
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            if time.monotonic() >= deadline:
                pid = _read_pid(path)
                raise FolderBusy(
                    _busy_message(folder, pid, what)
                    + f"\nIf no such process is running any more, delete '{path}' and run again."
                ) from None
            time.sleep(poll)
    try:  # pragma: no cover - Windows
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        yield path
    finally:  # pragma: no cover - Windows
        path.unlink(missing_ok=True)
