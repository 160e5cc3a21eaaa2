"""VideoCheckpointer: round trip, the loading policy, atomic saves and resuming past bad files."""

import os
import pickle

import numpy as np
import pytest
import torch

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2


def _model(seed, *opts):
    from detectron2.modeling import build_model

    from tests.d2.helpers import SMOKE_CONFIG, video_cfg

    torch.manual_seed(seed)
    return build_model(video_cfg(SMOKE_CONFIG, opts)).eval()


def _video():
    g = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (3, 64, 80), generator=g).float() for _ in range(2)]
    return {"image": frames, "height": 64, "width": 80}


def test_round_trip(tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer

    from video_mask2former.d2.checkpoint import VideoCheckpointer

    model = _model(0)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("model_final")
    fresh = _model(1)
    query_feat = model.sem_seg_head.predictor.query_feat.weight
    assert not torch.equal(fresh.sem_seg_head.predictor.query_feat.weight, query_feat)
    incompatible = VideoCheckpointer(fresh).resume_or_load(
        str(tmp_path / "model_final.pth"), resume=False
    )
    assert incompatible is not None
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key
    with torch.no_grad():
        a, b = model([_video()]), fresh([_video()])
    assert a["pred_scores"] == b["pred_scores"] and a["pred_labels"] == b["pred_labels"]
    assert all(torch.equal(x, y) for x, y in zip(a["pred_masks"], b["pred_masks"]))


def test_mismatched_keys_are_reported(tmp_path, caplog):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    model = _model(0)
    state = model.state_dict()
    state["unexpected.weight"] = torch.zeros(1)
    del state["sem_seg_head.predictor.query_embed.weight"]
    path = tmp_path / "edited.pth"
    torch.save({"model": state}, path)
    with caplog.at_level("INFO"):
        VideoCheckpointer(_model(1), allow_partial=True).load(str(path))
    text = caplog.text
    assert "sem_seg_head.predictor.query_embed.weight" in text
    assert "unexpected.weight" in text
    assert "1 missing keys" in text and "1 unexpected keys" in text


def test_missing_weights_file():
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    with pytest.raises(FileNotFoundError, match="model_final_3c8ec9.pkl"):
        VideoCheckpointer(_model(0)).load("model_final_3c8ec9.pkl")


# A model of another architecture than the smoke configuration's.
OTHER_ARCHITECTURE = ("MODEL.MASK_FORMER.HIDDEN_DIM", 32, "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", 5)


def _states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(v, b[k]) for k, v in a.items())


def test_weights_of_another_architecture_are_an_error_for_inference(tmp_path):
    from video_mask2former.checkpoint import CheckpointMismatchError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    path = tmp_path / "hidden32.pth"
    torch.save({"model": _model(0, *OTHER_ARCHITECTURE).state_dict()}, path)
    with pytest.raises(CheckpointMismatchError) as error:
        VideoCheckpointer(_model(1)).load(str(path))
    message = str(error.value)
    assert str(path) in message and "28 keys of another shape" in message
    assert "self_attn.in_proj_weight [96, 32] (model [192, 64])" in message
    assert "MODEL.ALLOW_PARTIAL_WEIGHTS True" in message


def test_opt_out_loads_what_fits_with_a_warning(tmp_path, caplog):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    other = _model(0, *OTHER_ARCHITECTURE).state_dict()
    path = tmp_path / "hidden32.pth"
    torch.save({"model": other}, path)
    model = _model(1)
    with caplog.at_level("WARNING", logger="video_mask2former"):
        VideoCheckpointer(model, allow_partial=True).load(str(path))
    stem = "backbone.stem.conv1.weight"
    assert torch.equal(model.state_dict()[stem], other[stem])
    (record,) = [r for r in caplog.records if r.name.startswith("video_mask2former")]
    assert record.levelname == "WARNING" and "Loading only what fits" in record.message
    assert "hidden32.pth" in record.message


def test_empty_weights_are_an_error_for_inference():
    """A CheckpointFileError: train_net_video.py prints it as one line (its USER_ERRORS)."""
    from video_mask2former.checkpoint import CheckpointFileError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    with pytest.raises(CheckpointFileError, match="MODEL.WEIGHTS is empty"):
        VideoCheckpointer(_model(0)).load("")


def test_training_init_tolerates_another_class_count(tmp_path, caplog):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    coco = _model(0, "MODEL.SEM_SEG_HEAD.NUM_CLASSES", 80).state_dict()
    path = tmp_path / "coco.pth"
    torch.save({"model": coco}, path)
    model = _model(1)
    with caplog.at_level("INFO", logger="video_mask2former"):
        VideoCheckpointer(model, for_training=True).resume_or_load(str(path), resume=False)
    query_feat = "sem_seg_head.predictor.query_feat.weight"
    assert torch.equal(model.state_dict()[query_feat], coco[query_feat])
    (summary,) = [r for r in caplog.records if r.name == "video_mask2former.checkpoint"]
    assert summary.levelname == "INFO"
    assert "coco.pth" in summary.message and "3 keys of another shape" in summary.message


def test_training_init_of_another_model_is_an_error(tmp_path):
    from video_mask2former.checkpoint import CheckpointMismatchError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    # A torchvision ResNet state dict: nothing matches the model's names.
    torchvision_like = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(9, 2)}
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision_like, path)
    checkpointer = VideoCheckpointer(_model(0), for_training=True)
    with pytest.raises(CheckpointMismatchError, match="at least 50%") as error:
        checkpointer.resume_or_load(str(path), resume=False)
    assert "resnet18.pth" in str(error.value) and "convert_torchvision_resnet" in str(error.value)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut here", b"<html>not found</html>"])
def test_unreadable_file_is_a_one_line_error(tmp_path, content):
    from video_mask2former.checkpoint import CheckpointFileError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    path = tmp_path / "model_final.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError) as error:
        VideoCheckpointer(_model(0)).load(str(path))
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "weights_only" not in message
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointFileError, match="model_final.pth: expected a dict of weights"):
        VideoCheckpointer(_model(0)).load(str(path))


def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    checkpointer = VideoCheckpointer(_model(0), str(tmp_path))
    checkpointer.save("model_0000001", iteration=1)
    saved = (tmp_path / "model_0000001.pth").read_bytes()
    real_save = torch.save

    def killed_midway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(len(saved) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_midway)
    for name in ("model_0000003", "model_0000001"):  # a new file; overwriting one
        with pytest.raises(KeyboardInterrupt):
            checkpointer.save(name, iteration=3)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "model_0000001.pth").read_bytes() == saved
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"


def test_save_removes_temporaries_of_killed_writes(tmp_path):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    for name in (".model_0000019.pth.1a2b3c4d.tmp", ".last_checkpoint.5e6f7a8b.tmp"):
        (tmp_path / name).write_bytes(b"partial")
    VideoCheckpointer(_model(0), str(tmp_path)).save("model_0000039", iteration=39)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000039.pth"]


def test_resume_skips_an_unreadable_latest_checkpoint(tmp_path, caplog):
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    first, second = _model(0), _model(1)
    VideoCheckpointer(first, str(tmp_path)).save("model_0000001", iteration=1)
    VideoCheckpointer(second, str(tmp_path)).save("model_0000003", iteration=3)
    latest = tmp_path / "model_0000003.pth"
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated, as by a kill (older versions)
    model = _model(2)
    with caplog.at_level("WARNING", logger="video_mask2former"):
        extra = VideoCheckpointer(model, str(tmp_path), for_training=True).resume_or_load("")
    assert extra["iteration"] == 1
    assert _states_equal(model.state_dict(), first.state_dict())
    assert any(
        "Cannot resume from" in r.message and str(latest) in r.message for r in caplog.records
    )


def test_ensure_complete_rewrites_an_unreadable_final_checkpoint(tmp_path):
    from video_mask2former.checkpoint import read_checkpoint
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    model = _model(0)
    checkpointer = VideoCheckpointer(model, str(tmp_path))
    checkpointer.save("model_final", iteration=3)
    final = tmp_path / "model_final.pth"
    mtime = final.stat().st_mtime_ns
    checkpointer.ensure_complete("model_final", iteration=3)  # readable: left alone
    assert final.stat().st_mtime_ns == mtime
    final.write_bytes(final.read_bytes()[:1000])
    checkpointer.ensure_complete("model_final", iteration=3)
    assert _states_equal(read_checkpoint(str(final)), model.state_dict())


def test_url_weights_go_through_the_same_cache_and_error(tmp_path, monkeypatch):
    """MODEL.WEIGHTS as a URL: downloaded into torch's hub cache; a URL that cannot be fetched is
    one error naming the URL and where to put the file by hand."""
    from video_mask2former.checkpoint import CheckpointFileError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    model = _model(0)
    checkpointer = VideoCheckpointer(model)
    url = "http://127.0.0.1:9/model_final_000000.pkl"  # port 9 (discard): refused locally
    with pytest.raises(CheckpointFileError, match="could not download .*127.0.0.1:9") as error:
        checkpointer.load(url)
    assert str(tmp_path / "hub" / "checkpoints" / "model_final_000000.pkl") in str(error.value)
    # a file put there by hand is used without any network
    cached = tmp_path / "hub" / "checkpoints" / "model_final_000000.pkl"
    source = _model(3)
    with open(cached, "wb") as f:  # an official-style pickle of numpy arrays
        weights = {k: v.numpy() for k, v in source.state_dict().items()}
        pickle.dump({"model": weights, "__author__": "test"}, f)
    checkpointer.load(url)
    weight = "sem_seg_head.predictor.query_feat.weight"
    torch.testing.assert_close(model.state_dict()[weight], source.state_dict()[weight])


class _RunsCode:
    """Pickles as ``open(path, "w")``: a weights file that runs code when loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_malicious_pkl_is_refused_before_it_runs(tmp_path):
    """detectron2's own .pkl reader is a plain pickle.load; VideoCheckpointer's is not."""
    from video_mask2former.checkpoint import CheckpointFileError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    marker = tmp_path / "pwned"
    path = tmp_path / "model_final.pkl"
    weights = {k: v.numpy() for k, v in _model(0).state_dict().items()}
    weights["extra"] = _RunsCode(str(marker))
    path.write_bytes(pickle.dumps({"model": weights, "__author__": "x"}))
    for for_training in (False, True):
        with pytest.raises(CheckpointFileError, match=r"model_final\.pkl refers to .*open"):
            VideoCheckpointer(_model(1), for_training=for_training).resume_or_load(
                str(path), resume=False
            )
        assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_official_pkl_loads_exactly_and_caffe2_pkl_as_detectron2_reads_it(tmp_path, protocol):
    from detectron2.checkpoint import DetectionCheckpointer

    from video_mask2former.checkpoint.layouts.official import d2_pickle_content
    from video_mask2former.checkpoint.safe_pickle import load_weights_pickle
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    source = _model(0).state_dict()
    arrays = {k: v.numpy() for k, v in source.items()}
    official = tmp_path / "official.pkl"
    official.write_bytes(pickle.dumps({"model": arrays, "__author__": "zoo"}, protocol=protocol))
    model = _model(1)
    VideoCheckpointer(model).resume_or_load(str(official), resume=False)
    assert _states_equal(model.state_dict(), source)
    # No "__author__": a Caffe2 / Detectron1 file (blobs, momentum entries dropped, heuristics).
    for content in (
        {"blobs": {"conv1_w": arrays[next(iter(arrays))], "conv1_w_momentum": 0}},
        {"res2_0_w": np.ones(3, np.float32)},
    ):
        path = tmp_path / "caffe2.pkl"
        path.write_bytes(pickle.dumps(content, protocol=protocol))
        ours = d2_pickle_content(load_weights_pickle(str(path)))  # what every reader makes of it
        theirs = DetectionCheckpointer(_model(1))._load_file(str(path))
        assert ours.keys() == theirs.keys() and ours["model"].keys() == theirs["model"].keys()
        assert ours["__author__"] == theirs["__author__"]
        assert ours["matching_heuristics"] == theirs["matching_heuristics"]
        for key, value in theirs["model"].items():
            assert np.array_equal(ours["model"][key], value)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_save_on_a_full_disk_says_so_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    """torch.save hides ENOSPC behind "enforce fail at inline_container.cc"; training must say
    the disk is full, name the checkpoint, and leave last_checkpoint on the previous one."""
    from video_mask2former import file_io
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    checkpointer = VideoCheckpointer(_model(0), str(tmp_path))
    checkpointer.save("model_0000001")

    def full_disk(fd, mode):
        os.close(fd)
        return open("/dev/full", mode)

    monkeypatch.setattr(file_io.os, "fdopen", full_disk)
    with pytest.raises(OSError, match=r"cannot write .*model_0000002\.pth: No space left"):
        checkpointer.save("model_0000002")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"


def test_refused_weights_leave_the_model_untouched(tmp_path):
    """The policy is checked before anything is loaded, as the library's load_checkpoint does."""
    from video_mask2former.checkpoint import CheckpointMismatchError
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    path = tmp_path / "hidden32.pth"
    torch.save({"model": _model(0, *OTHER_ARCHITECTURE).state_dict()}, path)
    model = _model(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        VideoCheckpointer(model).load(str(path))
    assert _states_equal(model.state_dict(), before)


def test_converted_imagenet_backbone_is_matched_by_name(tmp_path):
    """tools/convert_torchvision_resnet.py writes keys without "backbone."; detectron2's
    name-matching heuristics put them in place for a training initialisation."""
    import torchvision

    from video_mask2former.checkpoint.layouts.imagenet import convert_imagenet_file
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    pkl = str(tmp_path / "R-18.pkl")
    convert_imagenet_file(str(tmp_path / "r18.pth"), pkl, "torchvision_resnet")
    model = _model(0, "MODEL.RESNETS.NORM", "FrozenBN")
    VideoCheckpointer(model, for_training=True).resume_or_load(pkl, resume=False)
    with open(pkl, "rb") as f:
        arrays = pickle.load(f)["model"]
    state = model.state_dict()
    for key, value in arrays.items():
        assert np.array_equal(state[f"backbone.{key}"].numpy(), value), key


def test_video_checkpointer_reads_a_transformers_folder(tmp_path):
    """The transformers layout (a folder, a single file) through the same loading policy as
    load_checkpoint (tests/checkpoint/test_hf_loading.py)."""
    pytest.importorskip("safetensors")
    from tests.hf_models import tiny_model
    from video_mask2former import hf
    from video_mask2former.d2.checkpoint import VideoCheckpointer

    def reseeded(seed):
        model = tiny_model("resnet")
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) * 0.01)
        return model

    def assert_same_weights(a, b):
        for key, value in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[key], value, msg=key)

    source = tiny_model("resnet")
    hf.save_hf_checkpoint(str(tmp_path / "hf"), source.state_dict(), class_names=["a", "b", "c"])
    target = reseeded(3)
    VideoCheckpointer(target).load(str(tmp_path / "hf"))
    assert_same_weights(source, target)
    single = tmp_path / "model.bin"
    torch.save(hf.to_hf_state_dict(source.state_dict()), single)
    other = reseeded(4)
    VideoCheckpointer(other).load(str(single))
    assert_same_weights(source, other)
