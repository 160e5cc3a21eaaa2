"""Atomic file writing: a hidden temporary file beside the target, flushed to disk, then renamed.

Readers (and a process restarted after a kill) see either the previous file or the complete new
one, never a partial file. A temporary left by a kill is named ``.<name>.<random>.tmp`` and is
found by :func:`remove_temporaries`.
"""

import errno
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

    An exception in ``write`` leaves an existing ``path`` untouched and removes the temporary. A
    failed write (a full or read-only disk, a missing folder) raises an ``OSError`` of the same
    kind whose message names ``path`` and the reason (``No space left on device``), also when
    ``write`` is a C writer such as ``torch.save`` that hides it behind an error of its own.

    Args:
        path (str): the file to (re)place; its folder must exist.
        write (callable): writes the content to the binary file object it is given.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: its folder does not exist")
    tmp_path = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    try:
        # O_EXCL: never clobber another writer's temporary; the mode is open()'s usual one.
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
    except OSError as error:
        raise _write_error(path, error) from error
    try:
        with os.fdopen(fd, "wb") as f:
            recorder = _ErrorRecordingFile(f)
            write(recorder)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        # A writer that calls f.write from C (torch.save) reports a failed write as its own
        # error ("enforce fail ... file write failed"): the OSError it hid says why (ENOSPC).
        cause = error if isinstance(error, OSError) else recorder.error
        if cause is not None:
            raise _write_error(path, cause) from error
        raise
    _fsync_folder(folder)


class _ErrorRecordingFile:
    """A binary file object that remembers the first ``OSError`` its ``write`` raised."""

    def __init__(self, file: BinaryIO):
        self._file = file
        self.error = None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name):
        return getattr(self._file, name)


def _write_error(path: str, error: OSError) -> OSError:
    """``error`` as an error of writing ``path`` (not of its hidden temporary), saying that the
    previous file, if any, is unchanged."""
    reason = error.strerror or str(error)
    kept = f"; the previous {os.path.basename(path)} is unchanged" if os.path.exists(path) else ""
    return type(error)(error.errno, f"cannot write {path}: {reason}{kept}")


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
