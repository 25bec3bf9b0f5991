"""The one way textmill writes a file or a directory: whole, or not at all.

Everything is first written under a temporary name beside its destination (`.NAME.tmp`), flushed to
disk, and renamed into place, so a kill or a failure midway leaves the old file (or nothing) and a
hidden temporary that the next write replaces, never a half-written file under the real name.

    atomic_write_text(path, text)
    with replacing(path) as tmp:        # anything that writes a file at `tmp` (pyarrow, sqlite, savefig)
        table.write(tmp)
    with replacing(out_dir) as tmp:     # a directory, built whole and then renamed into place
        model.save_pretrained(tmp)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def temporary(path: Path) -> Path:
    """The name `path` is written under until it is complete: hidden, beside it (`.NAME.tmp`). A
    writer that picks a format by the file's suffix must be told the format."""
    return path.with_name(f".{path.name}.tmp")


def previous(path: Path) -> Path:
    """Where a directory that `replacing` swaps out waits until its successor is in place
    (`.NAME.old`): a kill between the two renames leaves it there, whole."""
    return path.with_name(f".{path.name}.old")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for the caller to write a file or a directory at; when the block ends
    without an error, it is flushed to disk and renamed over `path`. An existing directory at `path`
    is first renamed to `previous(path)` and removed once the new one is in place. On an error the
    temporary is removed and `path` is left as it was. Missing parent directories are created: the
    one rule for every output of every command, which then names the path it wrote."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    _remove(tmp)  # what an interrupted earlier write left
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        if path.is_dir() and not path.is_symlink():
            old = previous(path)
            _remove(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        _remove(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` as UTF-8 to `path`, whole or not at all."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
