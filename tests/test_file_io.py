"""Atomic writing: an interrupted write leaves the previous file and no partial one."""

import os

import pytest

from video_mask2former.file_io import atomic_write, remove_temporaries


def _interrupted(f):
    f.write(b"half a checkpoint")
    raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of torch.save


def test_interrupted_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.pth"
    atomic_write(str(path), lambda f: f.write(b"complete"))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), _interrupted)
    assert path.read_bytes() == b"complete"
    assert os.listdir(tmp_path) == ["model.pth"]  # the temporary was removed
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(tmp_path / "new.pth"), _interrupted)
    assert os.listdir(tmp_path) == ["model.pth"]


def test_interrupt_before_the_write_starts_is_the_interrupt(tmp_path, monkeypatch):
    """Ctrl-C landing while the temporary is being opened (before anything is written) ends as
    that KeyboardInterrupt, the previous file kept, no temporary left (it ended as an
    UnboundLocalError, so train_net_video.py exited 1 instead of 130 with its one line)."""
    from video_mask2former import file_io

    path = tmp_path / "model.pth"
    atomic_write(str(path), lambda f: f.write(b"complete"))

    def interrupted_fdopen(fd, *args, **kwargs):
        os.close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(file_io.os, "fdopen", interrupted_fdopen)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), lambda f: f.write(b"new"))
    assert path.read_bytes() == b"complete"
    assert os.listdir(tmp_path) == ["model.pth"]


def test_new_file_has_the_usual_mode(tmp_path):
    path = tmp_path / "last_checkpoint"
    atomic_write(str(path), lambda f: f.write(b"model_final.pth"))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_remove_temporaries_of_killed_writes(tmp_path):
    names = [".model_0000019.pth.1a2b3c4d.tmp", ".last_checkpoint.5e6f7a8b.tmp", "model.pth"]
    names += [".results.json.0badf00d.tmp", "notes.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_temporaries(str(tmp_path), "*.pth")
    assert removed == [str(tmp_path / ".model_0000019.pth.1a2b3c4d.tmp")]
    assert remove_temporaries(str(tmp_path), "last_checkpoint") == [
        str(tmp_path / ".last_checkpoint.5e6f7a8b.tmp")
    ]
    assert sorted(os.listdir(tmp_path)) == [".results.json.0badf00d.tmp", "model.pth", "notes.tmp"]
