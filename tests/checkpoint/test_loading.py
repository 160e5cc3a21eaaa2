import pickle

import pytest
import torch

from tests.modeling.tiny_video_model import build_tiny_model, random_video
from video_mask2former.checkpoint import (
    CLASS_DEPENDENT_KEYS,
    MIN_INIT_FRACTION,
    CheckpointFileError,
    CheckpointMismatchError,
    load_checkpoint,
    read_checkpoint,
)

CLASS_WEIGHT = "sem_seg_head.predictor.class_embed.weight"


def _save_pkl(state_dict, path):
    """An official-style detectron2 pickle: numpy arrays under "model"."""
    with open(path, "wb") as f:
        pickle.dump({"model": {k: v.numpy() for k, v in state_dict.items()}, "__author__": "x"}, f)


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_round_trip_gives_the_same_outputs(tmp_path, suffix):
    source = build_tiny_model(seed=1).eval()
    path = str(tmp_path / f"model{suffix}")
    if suffix == ".pkl":
        _save_pkl(source.state_dict(), path)
    else:
        torch.save({"model": source.state_dict(), "iteration": 3}, path)
    target = build_tiny_model(seed=2).eval()
    report = load_checkpoint(target, path)
    assert report.ok
    video = {"image": random_video(2, 64, 64)}
    with torch.no_grad():
        a, b = source([video]), target([video])
    assert a["pred_scores"] == b["pred_scores"] and a["pred_labels"] == b["pred_labels"]


def test_wrong_keys_are_listed_with_the_file(tmp_path):
    state = build_tiny_model().state_dict()
    state["sem_seg_head.extra.weight"] = torch.zeros(1)
    del state["sem_seg_head.predictor.query_feat.weight"]
    state["sem_seg_head.predictor.class_embed.bias"] = torch.zeros(99)
    path = str(tmp_path / "bad.pkl")
    _save_pkl(state, path)
    with pytest.raises(CheckpointMismatchError) as error:
        load_checkpoint(build_tiny_model(), path)
    message = str(error.value)
    assert "bad.pkl" in message
    assert "1 missing keys: sem_seg_head.predictor.query_feat.weight" in message
    assert "1 unexpected keys: sem_seg_head.extra.weight" in message
    assert "class_embed.bias [99]" in message
    model = build_tiny_model(seed=5)
    before = model.sem_seg_head.predictor.query_feat.weight.clone()
    report = load_checkpoint(model, path, strict=False)  # loads what fits
    assert not report.ok and len(report.shape_mismatches) == 1
    assert torch.equal(model.sem_seg_head.predictor.query_feat.weight, before)


def test_file_without_weights_is_a_clear_error(tmp_path):
    path = str(tmp_path / "notes.pth")
    torch.save({"iteration": 3, "model": []}, path)
    with pytest.raises(ValueError, match="notes.pth: expected a dict of weights"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(str(tmp_path / "missing.pkl"))


def _save_pth(state_dict, path):
    torch.save({"model": state_dict, "iteration": 3}, path)
    return str(path)


def test_opt_out_loads_what_fits_with_a_warning(tmp_path, caplog):
    state = build_tiny_model(seed=1).state_dict()
    del state["sem_seg_head.predictor.query_feat.weight"]
    path = _save_pth(state, tmp_path / "partial.pth")
    model = build_tiny_model(seed=2)
    with caplog.at_level("INFO", logger="video_mask2former.checkpoint"):
        report = load_checkpoint(model, path, strict=False)
    assert report.missing_keys == ["sem_seg_head.predictor.query_feat.weight"]
    assert torch.equal(model.sem_seg_head.predictor.class_embed.weight, state[CLASS_WEIGHT])
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "partial.pth" in record.message and "query_feat.weight" in record.message


def _with_other_class_count(state, num_classes):
    """``state`` as if the model had ``num_classes`` classes (e.g. a COCO model: 80)."""
    state = dict(state)
    hidden = state[CLASS_WEIGHT].shape[1]
    state[CLASS_WEIGHT] = torch.randn(num_classes + 1, hidden)
    state["sem_seg_head.predictor.class_embed.bias"] = torch.randn(num_classes + 1)
    state["criterion.empty_weight"] = torch.ones(num_classes + 1)
    return state


def test_training_init_tolerates_another_class_count(tmp_path, caplog):
    source = build_tiny_model(seed=1).state_dict()
    path = _save_pth(_with_other_class_count(source, 80), tmp_path / "coco.pth")
    with pytest.raises(CheckpointMismatchError, match="coco.pth"):  # not for inference
        load_checkpoint(build_tiny_model(), path)
    model = build_tiny_model(seed=2)
    before = model.sem_seg_head.predictor.class_embed.weight.clone()
    with caplog.at_level("INFO", logger="video_mask2former.checkpoint"):
        report = load_checkpoint(model, path, for_training=True)
    assert {k for k, _, _ in report.shape_mismatches} == set(CLASS_DEPENDENT_KEYS)
    assert torch.equal(model.sem_seg_head.predictor.class_embed.weight, before)
    query_feat = "sem_seg_head.predictor.query_feat.weight"
    assert torch.equal(model.state_dict()[query_feat], source[query_feat])
    (record,) = caplog.records  # one summary, at INFO: this difference is expected
    assert record.levelname == "INFO"
    assert "coco.pth" in record.message and "class_embed.weight [81, 32] (model [4, 32])" in (
        record.message
    )


def test_training_init_tolerates_a_backbone_only_file(tmp_path):
    source = build_tiny_model(seed=1).state_dict()
    backbone = {k: v for k, v in source.items() if k.startswith("backbone.")}
    path = _save_pth(backbone, tmp_path / "imagenet.pth")
    model = build_tiny_model(seed=2)
    report = load_checkpoint(model, path, for_training=True)
    assert report.backbone_complete and report.loaded_fraction < MIN_INIT_FRACTION
    assert all(torch.equal(model.state_dict()[k], v) for k, v in backbone.items())


def test_training_init_that_provides_too_little_is_an_error(tmp_path):
    source = build_tiny_model(seed=1).state_dict()
    decoder = {k: v for k, v in source.items() if k.startswith("sem_seg_head.pixel_decoder.")}
    path = _save_pth(decoder, tmp_path / "pixel_decoder.pth")
    model = build_tiny_model(seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="at least 50%") as error:
        load_checkpoint(model, path, for_training=True)
    assert "pixel_decoder.pth" in str(error.value) and "backbone.stem.weight" in str(error.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    report = load_checkpoint(model, path, strict=False, for_training=True)  # the opt-out
    assert 0 < report.loaded_fraction < MIN_INIT_FRACTION


def _truncated_pth(path):
    torch.save({"model": build_tiny_model().state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "name, write, reason",
    [
        ("truncated.pth", _truncated_pth, "truncated"),
        ("random.pth", lambda p: p.write_bytes(bytes(range(7, 256)) * 8), "neither"),
        ("text.pth", lambda p: p.write_text("model weights\nsee README\n"), "neither"),
        ("empty.pth", lambda p: p.write_bytes(b""), "empty"),
        ("empty.pkl", lambda p: p.write_bytes(b""), "empty"),
        (
            "truncated.pkl",
            lambda p: p.write_bytes(pickle.dumps({"model": [1] * 99})[:40]),
            "pickle",
        ),
    ],
)
def test_unreadable_file_is_a_one_line_error(tmp_path, name, write, reason):
    path = tmp_path / name
    write(path)
    with pytest.raises(CheckpointFileError) as error:
        load_checkpoint(build_tiny_model(), str(path))
    message = str(error.value)
    assert "\n" not in message and str(path) in message and reason in message
    assert "expected a .pth or .pkl file holding a model state dict" in message
    assert "weights_only=False" not in message


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "served"`` (stopped after the test)."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_is_downloaded_once_into_the_hub_cache(tmp_path, local_server, monkeypatch):
    served, base = local_server
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    model = build_tiny_model(seed=1).eval()
    _save_pkl(model.state_dict(), served / "model_final_abc123.pkl")
    other = build_tiny_model(seed=2).eval()
    load_checkpoint(other, f"{base}/model_final_abc123.pkl")
    cached = tmp_path / "hub" / "checkpoints" / "model_final_abc123.pkl"
    assert cached.is_file()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value)
    (served / "model_final_abc123.pkl").unlink()  # a second load needs no network
    load_checkpoint(build_tiny_model().eval(), f"{base}/model_final_abc123.pkl")


def test_url_that_cannot_be_fetched_names_the_url_and_the_cache_path(
    tmp_path, local_server, monkeypatch
):
    _, base = local_server
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    url = f"{base}/missing_model.pkl"
    with pytest.raises(CheckpointFileError) as error:
        load_checkpoint(build_tiny_model(), url)
    message = str(error.value)
    assert url in message and str(tmp_path / "hub" / "checkpoints" / "missing_model.pkl") in message
    assert "\n" not in message
    assert not (tmp_path / "hub" / "checkpoints" / "missing_model.pkl").exists()


def test_state_dict_of_a_wrapped_model_loads(tmp_path):
    """A state dict saved from a (Distributed)DataParallel model has "module." on every key, and
    other trainers store it under "state_dict": both read as detectron2's checkpointer reads
    them, by the library and VideoCheckpointer alike."""
    source = build_tiny_model(seed=1).state_dict()
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}}, path)
    model = build_tiny_model(seed=2)
    assert load_checkpoint(model, str(path)).ok
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.items())
