"""Atomic file writing: a hidden temporary file beside the target, flushed to disk, then renamed.

Readers (and a process restarted after a kill) see either the previous file or the complete new
one, never a partial file. A temporary left by a kill is named ``.<name>.<random>.tmp`` and is
found by :func:`remove_temporaries`.
"""

import glob
import os
import uuid
from typing import BinaryIO, Callable, List

__all__ = ["atomic_write", "remove_temporaries"]

# Suffix of the temporary files; their name is "." + the target's name + "." + random hex + this.
TMP_SUFFIX = ".tmp"

# Mode of a new file as open() creates it (rw for everyone, minus the process umask).
_NEW_FILE_MODE = 0o666


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX only: Windows cannot open a folder)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Let ``write(f)`` fill a temporary file beside ``path``, fsync it and rename it to ``path``.

    An exception in ``write`` leaves an existing ``path`` untouched and removes the temporary.

    Args:
        path (str): the file to (re)place; its folder must exist.
        write (callable): writes the content to the binary file object it is given.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp_path = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    # O_EXCL: never clobber another writer's temporary; the mode is open()'s usual one.
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)


def remove_temporaries(folder: str, name_pattern: str = "*") -> List[str]:
    """Remove the temporaries that interrupted :func:`atomic_write` calls left in ``folder``.

    Only call it where no other process is writing the same files at the same time.

    Args:
        folder (str): where the targets are.
        name_pattern (str): glob pattern of the targets' names, e.g. ``"*.pth"``.

    Returns:
        list[str]: the paths removed.
    """
    pattern = os.path.join(glob.escape(folder), f".{name_pattern}.*{TMP_SUFFIX}")
    removed = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    for path in removed:
        os.remove(path)
    return removed
