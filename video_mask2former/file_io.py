"""Output files: checked before the work, written atomically.

:func:`check_writable` says, before any input is read, whether an output file or folder can be
written where the user asked (every command line and library entry point that writes calls it).
:func:`atomic_write` writes a hidden temporary file beside the target, flushes it to disk and
renames it: readers (and a process restarted after a kill) see either the previous file or the
complete new one, never a partial file. A temporary left by a kill is named
``.<name>.<random>.tmp`` and is found by :func:`remove_temporaries`.
"""

import errno
import glob
import os
import tempfile
import uuid
from typing import BinaryIO, Callable, List, TextIO

__all__ = [
    "OutputError",
    "atomic_write",
    "check_writable",
    "remove_temporaries",
    "replace_reserved",
    "reserve_output",
]

# Suffix of the temporary files; their name is "." + the target's name + "." + random hex + this.
TMP_SUFFIX = ".tmp"

# Mode of a new file as open() creates it (rw for everyone, minus the process umask).
_NEW_FILE_MODE = 0o666


def check_writable(
    path: str, *, folder: bool = False, create_folders: bool = False, overwrite: bool = True
) -> None:
    """Raise an ``OSError`` naming ``path`` when the output cannot be written there.

    Call it before the work (reading inputs, building a model, exporting), so that a bad output
    location fails at once and nothing existing is touched. Writability is probed by creating and
    removing a temporary file in the folder that will hold the output (or, when that folder does
    not exist yet, in its nearest existing ancestor): this finds a read-only disk, a folder without
    write permission and a root-owned place alike.

    Args:
        path (str): the output file, or the output folder when ``folder`` is True.
        folder (bool): the output is a folder (its writer creates it and its parents).
        create_folders (bool): create the missing folders now (a file's parents; a folder output
            and its parents). False: a file's folder must exist, and nothing is created.
        overwrite (bool): False: an existing file, or a folder output that is not empty, is an
            error (``FileExistsError``; the caller may add how to allow it).

    Raises:
        IsADirectoryError: a file output names a folder.
        NotADirectoryError: a folder output names a file, or a file stands where a folder of the
            path should be.
        FileNotFoundError: the folder of a file output does not exist (``create_folders=False``).
        FileExistsError: the output exists and ``overwrite`` is False.
        OSError: the location cannot be written (a ``PermissionError`` for a folder without
            write permission); the message gives the folder and the reason.
    """
    path = os.fspath(path)
    if folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(f"cannot write {path}: it is a file, expected a folder")
        if not overwrite and os.path.isdir(path) and os.listdir(path):
            raise FileExistsError(f"cannot write into {path}: it is a folder that is not empty")
        holder = os.path.abspath(path)
    else:
        if os.path.isdir(path):
            raise IsADirectoryError(f"cannot write {path}: it is a folder, expected a file name")
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(f"cannot write {path}: it exists")
        holder = os.path.dirname(os.path.abspath(path))
    blocker = _file_in_the_way(holder)
    if blocker is not None:
        raise NotADirectoryError(f"cannot write {path}: {blocker} is a file, not a folder")
    if create_folders:
        try:
            os.makedirs(holder, exist_ok=True)
        except OSError as error:
            raise _not_writable(path, _nearest_existing(holder), error) from None
    elif not folder and not os.path.isdir(holder):
        raise FileNotFoundError(f"cannot write {path}: the folder {holder} does not exist")
    probe_folder = _nearest_existing(holder)
    try:
        fd, probe = tempfile.mkstemp(
            dir=probe_folder, prefix=f".{os.path.basename(path) or 'output'}.", suffix=TMP_SUFFIX
        )
    except OSError as error:
        raise _not_writable(path, probe_folder, error) from None
    os.close(fd)
    os.remove(probe)


def _nearest_existing(path: str) -> str:
    """``path`` or its closest existing ancestor."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _file_in_the_way(folder: str):
    """The existing file (not a folder) among ``folder`` and its ancestors, or None."""
    existing = _nearest_existing(folder)
    return existing if os.path.exists(existing) and not os.path.isdir(existing) else None


def _not_writable(path: str, folder: str, error: OSError) -> OSError:
    """The error of a location that cannot be written, of ``error``'s kind (PermissionError for
    EACCES / EPERM), naming ``path``, the folder and the reason."""
    reason = error.strerror or str(error)
    return type(error)(f"cannot write {path}: the folder {folder} is not writable ({reason})")


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
    recorder = None  # an interrupt may come before it exists (Ctrl-C in fdopen)
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
        cause = error if isinstance(error, OSError) else getattr(recorder, "error", None)
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


class OutputError(OSError):
    """An output file of a command line cannot be written (the message names it)."""


def reserve_output(path: str, option: str = "--json") -> str:
    """Check that the output file ``path`` (given by ``option``) can be written, creating its
    folder, by creating a temporary file next to it; returns the temporary file's path. A
    command line reserves its output before the work and fills it with
    :func:`replace_reserved` after, so a bad location fails at once and an existing file is only
    replaced by a complete one. The caller removes the temporary file when the work fails.

    Raises:
        OutputError: naming ``option`` and ``path`` and the reason (a folder in the way, a
            read-only disk, ...).
    """
    if os.path.isdir(path):
        raise OutputError(f"{option} {path} is a folder, expected a file path.")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
        )
    except OSError as e:
        raise OutputError(f"cannot write {option} {path}: {e.strerror or e}.") from None
    os.close(fd)
    return temporary


def replace_reserved(
    temporary: str, path: str, write: Callable[[TextIO], None], option: str = "--json"
) -> None:
    """Write the reserved ``temporary`` file (text) with ``write``, then rename it to ``path``.

    Raises:
        OutputError: naming ``option`` and ``path`` (the disk filled up, ...).
    """
    try:
        with open(temporary, "w") as f:
            write(f)
        os.replace(temporary, path)
    except OSError as e:
        raise OutputError(f"cannot write {option} {path}: {e.strerror or e}.") from None
