"""Weights files that must not run code, and weights writes that must not hide why they failed.

A ``.pkl`` whose pickle calls a function when loaded (``os.system``, ``open``, ``exec``) is
refused by every reader of weights (the library's ``load_checkpoint`` / ``read_checkpoint``,
detectron2's checkpointer through ``VideoCheckpointer`` in tests/d2/test_checkpoint.py) *before*
the function runs, with one line naming the file and the refused global; official-format
``.pkl`` files (NumPy arrays under ``"model"``, any pickle protocol, Python 2 pickles) still load
exactly.
"""

import builtins
import errno
import io
import os
import pickle

import numpy as np
import pytest
import torch

from tests.modeling.tiny_video_model import build_tiny_model
from video_mask2former.checkpoint import CheckpointFileError, load_checkpoint, read_checkpoint
from video_mask2former.checkpoint.safe_pickle import UnsafePickleError, load_weights_pickle


class _Payload:
    """Pickles as ``function(*args)``: what a malicious weights file does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _official(state_dict):
    """A detectron2 model-zoo pickle's content: NumPy arrays under "model"."""
    arrays = {k: v.numpy() for k, v in state_dict.items()}
    return {"model": arrays, "__author__": "official", "matching_heuristics": True}


def _malicious(marker, where):
    """A checkpoint content that creates ``marker`` when unpickled, hidden at ``where``."""
    content = _official(build_tiny_model().state_dict())
    payloads = {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "open": _Payload(builtins.open, str(marker), "w"),
        "exec": _Payload(builtins.exec, f"open({str(marker)!r}, 'w')"),
    }
    if where == "model":
        return {"model": payloads["os.system"], "__author__": "x"}
    if where == "author":
        content["__author__"] = payloads["open"]
        return content
    if where == "array":  # inside an object array: numpy unpickles its elements
        content["model"]["extra"] = np.array([payloads["exec"], 1], dtype=object)
        return content
    raise AssertionError(where)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("where", ["model", "author", "array"])
def test_malicious_pkl_is_refused_before_it_runs(tmp_path, where, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_final.pkl"
    path.write_bytes(pickle.dumps(_malicious(marker, where), protocol=protocol))
    for read in (read_checkpoint, lambda p: load_checkpoint(build_tiny_model(), p)):
        with pytest.raises(CheckpointFileError) as error:
            read(str(path))
        message = str(error.value)
        assert not marker.exists(), "the pickle's payload ran"
        assert "model_final.pkl" in message and "refused" in message
        assert "\n" not in message
    refused = {"model": "system", "author": "open", "array": "exec"}[where]
    assert f".{refused}, which" in message


def test_pickled_torch_tensors_are_refused_with_advice(tmp_path):
    """A plain pickle of torch tensors re-enters torch.load without weights_only: refused."""
    path = tmp_path / "tensors.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": torch.zeros(2)}}))
    with pytest.raises(CheckpointFileError, match=r"tensors\.pkl refers to torch\..* \.pth"):
        read_checkpoint(str(path))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_official_pkl_loads_exactly(tmp_path, protocol):
    source = build_tiny_model(seed=1).state_dict()
    path = tmp_path / "model_final_abc.pkl"
    path.write_bytes(pickle.dumps(_official(source), protocol=protocol))
    weights = read_checkpoint(str(path))
    assert set(weights) == set(source)
    for key, value in source.items():
        assert weights[key].dtype == value.dtype and torch.equal(weights[key], value), key
    model = build_tiny_model(seed=2)
    assert load_checkpoint(model, str(path)).ok
    for key, value in model.state_dict().items():
        assert torch.equal(value, source[key]), key


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 wrote ``str`` (BINSTRING), as in Caffe2 / Detectron1 pickles."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str2(self, obj):
        self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_str2


def test_python2_pickle_loads(tmp_path):
    arrays = {"conv1_w": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "n": np.int64(7)}
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump({"blobs": arrays})
    data = load_weights_pickle(io.BytesIO(buffer.getvalue()), "R-50.pkl")
    assert np.array_equal(data["blobs"]["conv1_w"], arrays["conv1_w"])
    assert data["blobs"]["conv1_w"].dtype == np.float32 and data["blobs"]["n"] == 7


def test_unsafe_pickle_error_names_the_source():
    data = pickle.dumps(_Payload(os.getcwd))
    with pytest.raises(UnsafePickleError, match="^weights.pkl refers to posix.getcwd"):
        load_weights_pickle(io.BytesIO(data), "weights.pkl")


# --- writing weights: a full or read-only disk, a missing folder --------------------------------
def _full_disk(fd, mode):
    """os.fdopen on a disk that is full: every write fails with ENOSPC (Linux's /dev/full)."""
    os.close(fd)
    return open("/dev/full", mode)


def _read_only_disk(path, flags, mode=0o777):
    raise OSError(errno.EROFS, "Read-only file system")


_WRITE_FAILURES = {  # name: (os function to replace, folder of the file, what the error says)
    "full-disk": (("fdopen", _full_disk), "", r"\[Errno 28\] cannot write .*model\.pth: No space"),
    "read-only-disk": (("open", _read_only_disk), "", r"\[Errno 30\] cannot write .*model\.pth"),
    "missing-folder": (None, "missing", r"cannot write .*missing/model\.pth: its folder does not"),
}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "failure, existing",
    [(name, False) for name in _WRITE_FAILURES] + [("full-disk", True), ("read-only-disk", True)],
)
def test_weights_write_errors_name_the_file_and_keep_the_old_one(
    tmp_path, monkeypatch, failure, existing
):
    """torch.save reports a failed write as "enforce fail at inline_container.cc": the OSError
    it hid (ENOSPC) is what the user sees, naming the checkpoint, and a previous one is kept."""
    from video_mask2former import file_io

    patch, folder, expected = _WRITE_FAILURES[failure]
    path = tmp_path / folder / "model.pth"
    if existing:
        path.parent.mkdir(exist_ok=True)
        torch.save({"model": {"w": torch.ones(1)}}, path)
    if patch:
        monkeypatch.setattr(file_io.os, *patch)
    state = {"model": build_tiny_model().state_dict()}
    with pytest.raises(OSError, match=expected) as error:
        file_io.atomic_write(str(path), lambda f: torch.save(state, f))
    assert ("previous model.pth is unchanged" in str(error.value)) == existing
    monkeypatch.undo()
    if existing:
        assert torch.equal(torch.load(path)["model"]["w"], torch.ones(1))
    assert [p.name for p in tmp_path.glob("**/*")] == (["model.pth"] if existing else [])
