"""Writing files so that a reader (or a crash) never sees half of one.

`atomic_write` writes a temporary sibling, flushes it to disk and renames it over the
target: the file holds either its old bytes or the new ones. `FileBackup` remembers a
file's bytes (or that it did not exist) before a run edits it, to put it back when the
run is rolled back.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEMP_SUFFIX = ".wasiport-tmp"
DEFAULT_MODE = 0o644


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once, keeping the file's permission bits (a new
    file gets 0644). The directory entry is flushed too, so the rename survives a crash."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else DEFAULT_MODE
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename or a new file in it); best effort where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class FileBackup:
    """A file's bytes before an edit (None: it did not exist), to restore on rollback."""

    path: Path
    data: bytes | None

    @classmethod
    def of(cls, path: Path) -> FileBackup:
        path = Path(path)
        return cls(path, path.read_bytes() if path.exists() else None)

    def restore(self) -> None:
        """Put the old bytes back, or remove a file the run created."""
        if self.data is None:
            self.path.unlink(missing_ok=True)
        else:
            atomic_write(self.path, self.data)
