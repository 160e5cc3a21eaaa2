"""Output locations that cannot be written: ``video_mask2former.file_io.check_writable``, the one
check that the demo's writers, the export and the weight converter call before any work.

Each row: what is wrong, how to build it (from a temporary folder: the output path and the
check's keyword arguments), the exception type and text the error must contain. Nothing is left
behind by a failed check.
"""

import errno
import os
import tempfile

import pytest

from video_mask2former.file_io import check_writable


def _read_only_disk(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


def _file(tmp, name="blocker"):
    path = tmp / name
    path.write_text("x")
    return path


ROWS = [
    (
        "a file output names a folder",
        lambda tmp: (tmp, {}),
        IsADirectoryError,
        "it is a folder, expected a file name",
    ),
    (
        "a folder output names a file",
        lambda tmp: (_file(tmp), {"folder": True}),
        NotADirectoryError,
        "blocker: it is a file, expected a folder",
    ),
    (
        "a file stands where a parent folder should be",
        lambda tmp: (_file(tmp) / "sub" / "out.mp4", {"create_folders": True}),
        NotADirectoryError,
        "blocker is a file, not a folder",
    ),
    (
        "the folder of a file output does not exist",
        lambda tmp: (tmp / "missing" / "x.onnx", {}),
        FileNotFoundError,
        "the folder {tmp}/missing does not exist",
    ),
    (
        "an existing file without overwrite",
        lambda tmp: (_file(tmp, "out.pth"), {"overwrite": False}),
        FileExistsError,
        "out.pth: it exists",
    ),
    (
        "a folder output that is not empty, without overwrite",
        lambda tmp: (_file(tmp / "hf_folder").parent, {"folder": True, "overwrite": False}),
        FileExistsError,
        "hf_folder: it is a folder that is not empty",
    ),
]


@pytest.fixture
def tmp(tmp_path):
    (tmp_path / "hf_folder").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "build, error, text", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_bad_output_locations(tmp, build, error, text):
    path, options = build(tmp)
    before = sorted(tmp.glob("**/*"))
    with pytest.raises(error, match=text.format(tmp=tmp)) as caught:
        check_writable(str(path), **options)
    assert str(path) in str(caught.value) and sorted(tmp.glob("**/*")) == before


@pytest.mark.parametrize(
    "options, target",
    [({}, "out.json"), ({"folder": True}, "new/frames"), ({"create_folders": True}, "a/b/x.mp4")],
)
def test_a_read_only_disk_is_found_by_creating_a_file(tmp, monkeypatch, options, target):
    """A read-only disk (creating a file fails with EROFS, as it does there), also where the
    folder does not exist yet (the nearest existing one is probed)."""
    monkeypatch.setattr(tempfile, "mkstemp", _read_only_disk)
    path = tmp / target
    if options.get("create_folders"):
        monkeypatch.setattr(os, "makedirs", lambda *args, **kwargs: None)
    with pytest.raises(OSError, match=f"{path}: the folder {tmp}.* is not writable \\(Read-only"):
        check_writable(str(path), **options)


def test_a_folder_without_write_permission(tmp, monkeypatch):
    """The probe's own error decides the kind: EACCES is a PermissionError."""

    def no_permission(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", no_permission)
    with pytest.raises(PermissionError, match="is not writable \\(Permission denied\\)"):
        check_writable(str(tmp / "out.pth"))


def test_writable_locations_pass_and_leave_nothing_behind(tmp):
    _file(tmp, "out.pth")
    check_writable(str(tmp / "out.pth"))  # overwrite by default
    check_writable(str(tmp / "hf_folder"), folder=True)  # an empty folder: nothing to overwrite
    check_writable(str(tmp / "new" / "hf"), folder=True)  # created later by its writer
    assert not (tmp / "new").exists()
    check_writable(str(tmp / "a" / "b" / "x.mp4"), create_folders=True)
    assert (tmp / "a" / "b").is_dir() and not os.listdir(tmp / "a" / "b")
    check_writable(str(tmp / "frames"), folder=True, create_folders=True)
    assert (tmp / "frames").is_dir() and not os.listdir(tmp / "frames")
    assert sorted(p.name for p in tmp.iterdir()) == ["a", "frames", "hf_folder", "out.pth"]
