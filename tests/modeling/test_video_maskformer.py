"""The VideoMaskFormer meta-architecture: preprocessing, targets, training, inference, autocast."""

import math

import pytest
import torch

from tests.modeling.tiny_video_model import DEC_LAYERS, NUM_CLASSES, build_tiny_model, random_video
from video_mask2former.data.frame_checks import FrameError, FrameSizeError
from video_mask2former.inference import network_outputs
from video_mask2former.modeling.video_maskformer import pad_images
from video_mask2former.structures import FrameInstances

H, W = 32, 32


def _frame(classes, ids, masks):
    return FrameInstances(
        image_size=tuple(masks.shape[-2:]),
        gt_classes=torch.tensor(classes),
        gt_ids=torch.tensor(ids),
        gt_masks=masks,
    )


def _training_video(seed=0):
    masks = torch.zeros(2, H, W, dtype=torch.bool)
    masks[0, 4:12, 4:20] = True
    masks[1, 16:30, 10:28] = True
    return {
        "image": random_video(2, H, W, seed=seed),
        "instances": [_frame([1, 2], [7, 8], masks), _frame([1, 2], [7, 8], masks)],
    }


def test_pad_images_to_divisibility():
    images, sizes = pad_images([torch.ones(3, 20, 33), torch.ones(3, 31, 10)], 32)
    assert images.shape == (2, 3, 32, 64) and sizes == [(20, 33), (31, 10)]
    assert images[0, :, 20:].abs().sum() == 0 and images[0, :, :20, :33].min() == 1


def test_inference_output_format_with_odd_sizes():
    model = build_tiny_model(test_topk=4).eval()
    video = {"image": random_video(3, 37, 45), "height": 50, "width": 61}
    with torch.no_grad():
        result = model([video])
    assert result["image_size"] == (50, 61)
    assert len(result["pred_scores"]) == 4 and len(result["pred_labels"]) == 4
    assert all(0 <= label < NUM_CLASSES for label in result["pred_labels"])
    assert all(m.shape == (3, 50, 61) and m.dtype == torch.bool for m in result["pred_masks"])
    with torch.no_grad():
        default_size = model([{"image": random_video(2, 37, 45)}])
    assert default_size["pred_masks"][0].shape == (2, 37, 45)


def test_inference_topk_larger_than_candidates():
    model = build_tiny_model(test_topk=1000).eval()
    with torch.no_grad():
        result = model([{"image": random_video(2, H, W)}])
    assert len(result["pred_scores"]) == 5 * NUM_CLASSES


def test_inference_rejects_bad_batches():
    model = build_tiny_model().eval()
    with pytest.raises(ValueError, match="one video per call"):
        model([{"image": random_video()}, {"image": random_video()}])
    with pytest.raises(ValueError, match="the video has no frames"):
        model([{"image": []}])
    model.train()
    with pytest.raises(ValueError, match="same number"):
        model([{"image": random_video(2)}, {"image": random_video(3)}])


def test_frames_of_different_sizes_are_an_error_not_padded():
    """Whole-video inference used frame 0's size for every frame (masks of the larger frame
    cropped and stretched); now the video is refused, naming the frame and both sizes."""
    model = build_tiny_model().eval()
    frames = random_video(2, H, W) + random_video(1, 40, 48)
    with torch.no_grad(), pytest.raises(
        FrameSizeError,
        match=r"frame 2 of the video \(whole-video inference\) is 48x40 .*0 is 32x32",
    ):
        model([{"image": frames}])


def test_whole_video_inference_checks_frames_before_the_network(monkeypatch):
    model = build_tiny_model().eval()
    monkeypatch.setattr(model, "predict", lambda *args: pytest.fail("the network ran"))
    frames = random_video(2, H, W)
    frames[1] = frames[1].float() / 255
    with pytest.raises(FrameError, match=r"frame 1 of the video .*looks like a 0..1 image"):
        model([{"image": frames}])


def test_prepare_targets_label_from_present_frame():
    model = build_tiny_model()
    masks = torch.zeros(3, 20, 30, dtype=torch.bool)
    masks[:, 2:5, 3:9] = True
    empty = torch.zeros_like(masks)
    # Instance 0 present in both frames; instance 1 only in frame 0 (the last frame carries the
    # mapper's dummy "no object" class 3 for it); instance 2 in no frame.
    frame0 = _frame([1, 2, 0], [5, 6, -1], torch.stack([masks[0], masks[1], empty[2]]))
    frame1 = _frame([1, 3, 0], [5, -1, -1], torch.stack([masks[0], empty[1], empty[2]]))
    video = {"image": random_video(2, 20, 30), "instances": [frame0, frame1]}
    (target,) = model.prepare_targets([video], (32, 32))
    assert target["labels"].tolist() == [1, 2]  # the official would give [1, 3]
    assert target["ids"].tolist() == [[5, 5], [6, -1]]
    assert target["masks"].shape == (2, 2, 32, 32) and target["masks"].dtype == torch.float32
    assert target["masks"][0, 1, 2:5, 3:9].all() and target["masks"][:, :, 20:].sum() == 0
    assert target["masks"][1, 1].sum() == 0


def test_training_step_returns_weighted_losses_and_gradients():
    model = build_tiny_model().train()
    torch.manual_seed(0)
    losses = model([_training_video(0), _training_video(1)])
    expected = {"loss_ce", "loss_mask", "loss_dice"}
    expected |= {f"{k}_{i}" for k in sorted(expected) for i in range(DEC_LAYERS)}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = model.sem_seg_head.predictor.query_feat.weight.grad
    assert grads is not None and grads.abs().sum() > 0
    assert model.sem_seg_head.pixel_decoder.input_proj[0][0].weight.grad.abs().sum() > 0
    # Weighted: loss_ce is 2x the criterion's unweighted value (the matcher is deterministic).
    model.zero_grad()
    images, _, num_frames = model.preprocess([_training_video(0), _training_video(1)])
    outputs = model.predict(images, num_frames, keep_aux=True)
    targets = model.prepare_targets([_training_video(0), _training_video(1)], (32, 32))
    raw = model.criterion(outputs, targets)
    assert math.isclose(losses["loss_ce"].item(), 2 * raw["loss_ce"].item(), rel_tol=1e-4)


def test_autocast_bf16_cpu_inference():
    model = build_tiny_model().eval()
    model.allow_slow_low_precision = True  # the bf16 path even on a CPU that emulates bf16
    video = {"image": random_video(2, 37, 45), "height": 40, "width": 50}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, _, _ = network_outputs(model, [video])
        result = model([video])
    assert torch.isfinite(outputs["pred_logits"].float()).all()
    assert torch.isfinite(outputs["pred_masks"].float()).all()
    assert outputs["pred_masks"].dtype == torch.bfloat16  # the decoder did run in bf16
    assert all(math.isfinite(s) for s in result["pred_scores"])
    assert result["pred_masks"][0].shape == (2, 40, 50)


def test_autocast_bf16_cpu_training_step():
    model = build_tiny_model().train()
    model.allow_slow_low_precision = True  # the bf16 path even on a CPU that emulates bf16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model([_training_video(0), _training_video(1)])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_pixel_statistics_are_not_in_state_dict():
    model = build_tiny_model()
    assert "pixel_mean" not in model.state_dict() and "pixel_std" not in model.state_dict()


def test_losses_decrease_over_a_short_run():
    """A few AdamW steps on one fixed batch: the model learns (the total loss drops)."""
    model = build_tiny_model(seed=3).train()
    batch = [_training_video(0), _training_video(1)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    totals = []
    for step in range(25):
        torch.manual_seed(step)  # the criterion's point sampling
        total = sum(model(batch).values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert sum(totals[-5:]) / 5 < 0.75 * sum(totals[:5]) / 5, totals  # measured: 0.54


def test_one_step_reaches_every_trainable_parameter():
    """T=2, 64x64, Q=5, K=3: the losses of one step give every trainable parameter a gradient."""
    model = build_tiny_model().train()
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 8:30, 8:40] = True
    masks[1, 34:60, 20:56] = True
    video = {
        "image": random_video(2, 64, 64, seed=4),
        "instances": [_frame([0, 2], [1, 2], masks), _frame([0, 2], [1, 2], masks)],
    }

    def without_gradient():
        model.zero_grad()
        torch.manual_seed(0)
        sum(model([video]).values()).backward()
        return [
            name
            for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
        ]

    # The encoder's level embedding reaches the loss only through the deformable attention's
    # sampling_offsets and attention_weights, which the official init sets to zero: it gets its
    # gradient from the second step on. Everything else gets one at once.
    assert without_gradient() == ["sem_seg_head.pixel_decoder.transformer.level_embed"]
    torch.optim.SGD(model.parameters(), lr=1e-2).step()
    assert without_gradient() == []
