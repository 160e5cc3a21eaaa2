"""Windowed long-video inference: equality with whole-video inference, and track linking."""

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from tests.conftest import requires_cuda
from tests.modeling.tiny_video_model import NUM_CLASSES, NUM_QUERIES, build_tiny_model, random_video
from video_mask2former.data.frame_checks import FrameSizeError
from video_mask2former.inference.postprocess import resize_mask_logits
from video_mask2former.inference.windowed import (
    TrackAccumulator,
    WindowOutput,
    iter_windows,
    match_embeddings,
    windowed_inference,
)
from video_mask2former.structures import RLEVideoMask


def _whole_and_windowed(num_frames, window_size, height=40, width=48, output_size=(45, 50)):
    model = build_tiny_model(test_topk=7).eval()
    frames = random_video(num_frames, height, width, seed=3)
    video = {"image": frames, "height": output_size[0], "width": output_size[1]}
    with torch.no_grad():
        whole = model([video])
    model.window_size = window_size
    with torch.no_grad():
        windowed = model([video])
    return whole, windowed


def _assert_same_result(whole, windowed):
    assert windowed["image_size"] == whole["image_size"]
    assert windowed["pred_scores"] == whole["pred_scores"]  # exactly, not approximately
    assert windowed["pred_labels"] == whole["pred_labels"]
    assert len(windowed["pred_masks"]) == len(whole["pred_masks"])
    for compact, dense in zip(windowed["pred_masks"], whole["pred_masks"]):
        assert isinstance(compact, RLEVideoMask)
        assert torch.equal(compact.to_tensor(), dense)


@pytest.mark.parametrize("window_size", [4, 9])
def test_window_at_least_video_length_equals_whole_video(window_size):
    whole, windowed = _whole_and_windowed(num_frames=4, window_size=window_size)
    _assert_same_result(whole, windowed)
    assert any(mask.to_tensor().any() for mask in windowed["pred_masks"])  # not vacuous


def test_video_shorter_than_one_window():
    whole, windowed = _whole_and_windowed(num_frames=2, window_size=5)
    _assert_same_result(whole, windowed)


@pytest.mark.parametrize("window_size", [1, 2])
def test_short_windows_cover_every_frame(window_size):
    _, windowed = _whole_and_windowed(num_frames=5, window_size=window_size)
    assert len(windowed["pred_scores"]) == 7
    for mask in windowed["pred_masks"]:
        assert mask.shape == (5, 45, 50)
    assert all(0 <= t < NUM_QUERIES for t in windowed["pred_track_ids"])
    assert all(0 <= c < NUM_CLASSES for c in windowed["pred_labels"])


def test_persistent_content_keeps_every_track_in_its_slot():
    """A video whose content does not change: every window predicts the same, tracks never swap."""
    model = build_tiny_model(test_topk=5).eval()
    frame = random_video(1, 32, 32, seed=5)[0]
    orders = []
    tracks = TrackAccumulator(output_size=(32, 32))
    with torch.no_grad():
        for window in iter_windows([frame] * 6, 2):
            orders.append(tracks.add(model.predict_window(window)))
        single = model.predict_window([frame] * 2)
    for order in orders:
        assert torch.equal(order, torch.arange(NUM_QUERIES))
    result = tracks.result(topk=5)
    expected = torch.softmax(single.pred_logits.float(), -1)[:, :-1]
    scores = [
        expected[t, c].item() for t, c in zip(result["pred_track_ids"], result["pred_labels"])
    ]
    assert result["pred_scores"] == pytest.approx(scores, abs=1e-6)
    for mask in result["pred_masks"]:  # the same mask in every window
        dense = mask.to_tensor()
        assert torch.equal(dense[0::2], dense[0:1].expand(3, -1, -1))


def _window(embeds, labels, masks, no_object=8.0):
    """A synthetic WindowOutput: query i predicts class labels[i] (or no-object for -1)."""
    num_queries = embeds.shape[0]
    logits = torch.zeros(num_queries, NUM_CLASSES + 1)
    for i, label in enumerate(labels):
        logits[i, label if label >= 0 else NUM_CLASSES] = no_object
    return WindowOutput(
        pred_logits=logits,
        pred_masks=masks,
        pred_embeds=embeds,
        padded_size=(16, 16),
        image_size=(16, 16),
    )


def _masks(num_queries, num_frames, present):
    """Mask logits (Q, W, 4, 4): -10 everywhere, +10 on a query-specific block where present."""
    masks = torch.full((num_queries, num_frames, 4, 4), -10.0)
    for query, block in present.items():
        masks[query, :, block : block + 2, 0:2] = 10.0
    return masks


def test_tracks_follow_permuted_queries_across_windows():
    generator = torch.Generator().manual_seed(0)
    embeds = torch.randn(NUM_QUERIES, 16, generator=generator)
    labels = [0, 1, -1, -1, -1]
    first = _window(embeds, labels, _masks(NUM_QUERIES, 2, {0: 0, 1: 2}))
    perm = torch.tensor([3, 0, 4, 1, 2])  # the second window's query i is the first's perm[i]
    second = _window(
        embeds[perm] + 0.01 * torch.randn(NUM_QUERIES, 16, generator=generator),
        [labels[int(p)] for p in perm],
        _masks(NUM_QUERIES, 2, {int((perm == 0).nonzero()): 0, int((perm == 1).nonzero()): 2}),
    )
    tracks = TrackAccumulator(output_size=(16, 16))
    tracks.add(first)
    order = tracks.add(second)
    assert torch.equal(perm[order], torch.arange(NUM_QUERIES))  # track j continues query j
    result = tracks.result(topk=2)
    assert sorted(result["pred_track_ids"]) == [0, 1]
    for track, label, mask in zip(
        result["pred_track_ids"], result["pred_labels"], result["pred_masks"]
    ):
        assert label == labels[track]  # same class in both windows
        per_frame = mask.areas()
        assert len(per_frame) == 4 and per_frame[0] > 0
        assert all(area == per_frame[0] for area in per_frame)  # present in every frame


def test_object_entering_later_gets_its_own_track():
    generator = torch.Generator().manual_seed(1)
    embeds = torch.linalg.qr(torch.randn(16, 16, generator=generator))[0][:NUM_QUERIES]
    # Window 1: object A (class 0) on query 0; queries 1-4 background.
    first = _window(embeds, [0, -1, -1, -1, -1], _masks(NUM_QUERIES, 3, {0: 0}))
    # Window 2: A moved to query 2 (same embedding); object B (class 2) appears on query 0, whose
    # embedding is close to background query 4 of window 1.
    second_embeds = embeds[[4, 1, 0, 3, 2]].clone()
    second = _window(second_embeds, [2, -1, 0, -1, -1], _masks(NUM_QUERIES, 3, {0: 2, 2: 0}))
    tracks = TrackAccumulator(output_size=(16, 16))
    tracks.add(first)
    tracks.add(second)
    result = tracks.result(topk=2)
    by_label = dict(zip(result["pred_labels"], zip(result["pred_track_ids"], result["pred_masks"])))
    assert set(by_label) == {0, 2}
    track_a, mask_a = by_label[0]
    track_b, mask_b = by_label[2]
    assert track_a == 0 and track_b == 4 and track_a != track_b
    area = mask_a.areas()[0]
    assert area > 0 and mask_a.areas() == [area] * 6  # A present throughout
    assert mask_b.areas() == [0, 0, 0, area, area, area]  # B empty before it entered
    scores = dict(zip(result["pred_labels"], result["pred_scores"]))
    # B's score averages over the window where it is active only: not halved by window 1.
    assert scores[2] == pytest.approx(scores[0], rel=1e-6)


def test_match_embeddings_is_a_permutation_maximising_similarity():
    generator = torch.Generator().manual_seed(2)
    previous = torch.randn(6, 8, generator=generator)
    perm = torch.randperm(6, generator=generator)
    order = match_embeddings(previous, 3.0 * previous[perm])  # scale does not matter (cosine)
    assert torch.equal(perm[order], torch.arange(6))


def test_frames_are_streamed_one_window_at_a_time():
    model = build_tiny_model(test_topk=3).eval()
    pulled = []

    def frames():
        for i in range(7):
            pulled.append(i)
            yield np.full((64, 64, 3), 10 * i, np.uint8)  # (H, W, 3) RGB arrays are accepted

    seen = []
    original = model.predict  # the network, run once per window

    def recording(images, num_frames, keep_aux):
        seen.append((num_frames, len(pulled)))
        return original(images, num_frames, keep_aux)

    model.predict = recording
    result = model.inference_windowed(frames(), output_size=(64, 64), window_size=3)
    assert seen == [(3, 3), (3, 6), (1, 7)]  # never more than one window read ahead
    assert all(mask.shape == (7, 64, 64) for mask in result["pred_masks"])


def test_frame_of_another_size_in_a_later_window_is_an_error():
    """Each window used to be resized to the output size on its own: a video whose frames
    change size was silently accepted. Now it is refused, naming the frame in the video."""
    model = build_tiny_model().eval()
    frames = random_video(2, 32, 32) + random_video(2, 40, 48)
    with pytest.raises(
        FrameSizeError, match=r"frame 2 of the video \(windowed inference\) is 48x40 .*0 is 32x32"
    ):
        model.inference_windowed(iter(frames), (32, 32), window_size=2)


@pytest.mark.parametrize("window_size", ["2", 1.5, True])
def test_window_size_that_is_not_an_integer_is_an_error(window_size):
    model = build_tiny_model().eval()
    with pytest.raises(ValueError, match="window_size must be an integer"):
        model.inference_windowed(random_video(2), (32, 32), window_size=window_size)
    with pytest.raises(ValueError, match="window_size must be an integer"):
        windowed_inference(model.predict_window, random_video(2), window_size, (32, 32))


def test_iter_windows_rejects_non_positive_size():
    with pytest.raises(ValueError, match="window_size must be an integer >= 1"):
        list(iter_windows(range(3), 0))


def test_maps_without_positive_logits_are_empty_without_resizing(monkeypatch):
    """Maps whose low-resolution logits are all <= 0 skip the resize and come out empty."""
    import video_mask2former.inference.windowed as windowed

    resized = []
    original = windowed.resize_mask_logits

    def counting(maps, *args):
        resized.append(maps.shape[0])
        return original(maps, *args)

    monkeypatch.setattr(windowed, "resize_mask_logits", counting)
    embeds = torch.eye(NUM_QUERIES, 8)
    masks = _masks(NUM_QUERIES, 2, {0: 0, 3: 2})  # queries 0 and 3 have foreground
    masks[3, 1] = -1e-3  # ... query 3 only in its first frame
    tracks = TrackAccumulator(output_size=(16, 16))
    tracks.add(_window(embeds, [0, -1, -1, 1, -1], masks))
    assert sum(resized) == 3  # (0, 0), (0, 1), (3, 0); the 7 others were not resized
    result = tracks.result(topk=NUM_QUERIES * NUM_CLASSES)
    areas = {t: m.areas() for t, m in zip(result["pred_track_ids"], result["pred_masks"])}
    assert areas[0][0] > 0 and areas[0][1] > 0 and areas[3][0] > 0 and areas[3][1] == 0
    assert all(areas[t] == [0, 0] for t in (1, 2, 4))


def _random_window(seed, device, num_frames=3, size=8):
    """A WindowOutput with random logits, embeddings and masks; some maps entirely <= 0."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.randn(NUM_QUERIES, num_frames, size, size, generator=generator) * 3
    masks[1] = -masks[1].abs()  # track 1: no candidate map
    masks[2, 0] = -masks[2, 0].abs()  # track 2: none in its first frame
    # Track 3: one candidate map, whose only positive logit lies in the padding (cropped away).
    masks[3] = -5.0
    masks[3, 1, -1, -1] = 1.0
    return WindowOutput(
        pred_logits=torch.randn(NUM_QUERIES, NUM_CLASSES + 1, generator=generator).to(device),
        pred_masks=masks.to(device),
        pred_embeds=torch.randn(NUM_QUERIES, 16, generator=generator).to(device),
        padded_size=(32, 32),
        image_size=(30, 27),
    )


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("maps_per_chunk", [1, 4, 1000])
def test_masks_and_activity_match_dense_reference(device, maps_per_chunk):
    """Per track: its RLEs are pycocotools' encoding of the densely resized masks, and it is
    active in a window exactly when one of its resized masks has a foreground pixel."""
    output_size = (23, 41)
    windows = [_random_window(seed, device) for seed in (0, 1)]
    tracks = TrackAccumulator(output_size=output_size, maps_per_chunk=maps_per_chunk)
    orders = [tracks.add(window) for window in windows]
    result = tracks.result(topk=NUM_QUERIES * NUM_CLASSES)
    dense = torch.cat(
        [
            resize_mask_logits(w.pred_masks[o.to(device)], w.padded_size, w.image_size, output_size)
            > 0
            for w, o in zip(windows, orders)
        ],
        dim=1,
    ).cpu()  # (Q, T, H, W) in track order, resized on the windows' device
    for track, mask in zip(result["pred_track_ids"], result["pred_masks"]):
        frames = np.asfortranarray(dense[track].permute(1, 2, 0).numpy().astype(np.uint8))
        assert mask.rles == mask_util.encode(frames)
    active = dense.unflatten(1, (len(windows), -1)).flatten(2).any(dim=2)  # (Q, windows)
    assert torch.equal(tracks._active_windows, active.sum(dim=1).float())
    assert 0 < int(active.sum()) < active.numel()  # not vacuous
    for window_index, order in enumerate(orders):  # queries 1 and 3 are never active
        assert not active[order.argsort()[[1, 3]], window_index].any()
