"""Small file helpers shared by every stage. Writes that matter are atomic: a temp file in the same
directory, fsync, then ``os.replace``, so an interrupted job never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def file_lock(folder: str | os.PathLike) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/.build.lock``, released by the kernel if the holder is killed: the first
    process builds a shared cache entry, concurrent ones (ranks, parallel jobs) wait and then find it built."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sweep_stale_tmp(directory, older_than_s: float = 600.0) -> list[Path]:
    """Remove hidden ``.*.tmp`` files and folders in ``directory`` untouched for ``older_than_s`` seconds: what a
    killed atomic write leaves behind (never read, only clutter). Call it where a job starts on a directory it
    owns; the age guard spares a temp file that a concurrent writer is still filling. Returns what was removed."""
    removed, now = [], time.time()
    with contextlib.suppress(FileNotFoundError):
        for p in Path(directory).glob(".*.tmp"):
            try:
                if now - p.lstat().st_mtime < older_than_s:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except FileNotFoundError:  # gone meanwhile
                continue
            removed.append(p)
    return removed


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(path, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")


def read_jsonl(path) -> list[dict]:
    """Read complete JSON lines; a trailing partial line (from a killed writer) is ignored."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            rows.append(json.loads(line))
    return rows


def append_jsonl(path, row: dict) -> None:
    """Append one line with a single write, flushed and fsynced (appends of < PIPE_BUF are not torn)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def save_figure(fig, out_dir, stem: str, dpi: int = 150, exts=("png", "pdf")) -> list:
    """Write a matplotlib figure as ``out_dir/stem.{png,pdf}``, each atomically; returns the paths."""
    paths = []
    for ext in exts:
        path = Path(out_dir) / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi)
        paths.append(path)
    return paths
