"""VSPW metrics (video_mask2former/evaluation/vss_metrics.py): hand-computed tiny cases for each
rule of mIoU and video consistency, a brute-force check of the O(T) window counting, and equality
with the VSPW authors' scripts on small random cases (numbers carried as literals below)."""

import math
import warnings

import numpy as np
import pytest

from video_mask2former.evaluation.vss_metrics import (
    ConfusionAccumulator,
    VCAccumulator,
    confusion_matrix,
    consistency_windows,
    iou_per_class,
    mean_iou,
    window_scores,
)


def _video(*frames):
    """(T, H, W) uint8 from nested lists."""
    return np.array(frames, dtype=np.uint8)


# ---------------------------------------------------------------------------------------- mIoU


def test_miou_by_hand_ignore_pixels_left_out():
    gt = np.array([[0, 0, 1], [255, 2, 1]])
    pred = np.array([[0, 1, 1], [2, 2, 0]])  # the ignored pixel predicted 2: not counted
    acc = ConfusionAccumulator(4)
    acc.update(gt, pred)
    # class 0: TP 1, GT 2, pred 2 -> 1/3; class 1: TP 1, GT 2, pred 2 -> 1/3; class 2: 1/1
    np.testing.assert_allclose(acc.iou_per_class()[:3], [1 / 3, 1 / 3, 1.0])
    assert math.isnan(acc.iou_per_class()[3])
    assert acc.miou() == pytest.approx(5 / 9)
    assert acc.confusion.sum() == 5 and acc.confusion[2, 2] == 1


def test_miou_class_never_in_ground_truth_is_excluded():
    # class 3 is predicted but never in the ground truth: out of the mean, but its FP still
    # counts as a FN of class 0
    acc = ConfusionAccumulator(4)
    acc.update(np.array([[0, 0]]), np.array([[0, 3]]))
    assert acc.miou() == pytest.approx(0.5)
    assert mean_iou(acc.confusion) == pytest.approx(0.5)
    assert math.isnan(iou_per_class(acc.confusion)[3])


def test_miou_one_matrix_over_frames_not_a_mean_of_frames():
    acc = ConfusionAccumulator(2)
    acc.update(np.array([[0, 0, 0]]), np.array([[0, 0, 0]]))  # frame IoU 1
    acc.update(np.array([[0]]), np.array([[1]]))  # frame IoU 0 for class 0
    # pooled: class 0 TP 3, GT 4, pred 3 -> 3/4 (a mean of frames would give 1/2)
    assert acc.miou() == pytest.approx(0.75)


def test_miou_without_any_ground_truth_is_nan():
    acc = ConfusionAccumulator(3)
    acc.update(np.full((2, 2), 255), np.zeros((2, 2), dtype=int))
    assert math.isnan(acc.miou()) and acc.confusion.sum() == 0


def test_confusion_merge_adds_and_checks_classes():
    a, b = ConfusionAccumulator(3), ConfusionAccumulator(3)
    a.update(np.array([[0, 1]]), np.array([[0, 2]]))
    b.update(np.array([[2, 255]]), np.array([[2, 1]]))
    whole = ConfusionAccumulator(3)
    whole.update(np.array([[0, 1, 2, 255]]), np.array([[0, 2, 2, 1]]))
    assert a.merge(b) is a
    np.testing.assert_array_equal(a.confusion, whole.confusion)
    with pytest.raises(ValueError, match="3 and 4 classes|4 and 3 classes"):
        a.merge(ConfusionAccumulator(4))


@pytest.mark.parametrize(
    "gt, pred, message",
    [
        ([[0, 4]], [[0, 0]], "ground truth .*value 4 is outside"),
        ([[0, 1]], [[0, 3]], "prediction: value 3 is outside"),
        ([[0, 1]], [[0, -1]], "prediction: value -1 is outside"),
        ([[0, 1]], [[0, 1, 2]], r"one \(H, W\) shape"),
    ],
)
def test_confusion_bad_values(gt, pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(gt), np.array(pred), 3)


def test_confusion_rejects_float_labels():
    with pytest.raises(ValueError, match="integer labels"):
        confusion_matrix(np.zeros((1, 2)), np.zeros((1, 2), dtype=int), 3)
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionAccumulator(0)


# ------------------------------------------------------------------------------ video consistency


def test_vc_window_range_leaves_out_the_last_full_window():
    # n = 2, T = 3: the authors' range(T - n) scores the window starting at 0 only; the flicker
    # in the last frame (which only the window starting at T - n = 1 would see) does not count
    gt = _video([[1, 1]], [[1, 1]], [[1, 1]])
    pred = _video([[0, 0]], [[0, 0]], [[0, 5]])
    counts = consistency_windows(gt, pred, (2,))
    np.testing.assert_array_equal(counts[2], [[2, 2]])
    acc = VCAccumulator((2,))
    acc.add_video(gt, pred)
    assert acc.result() == {"mVC2": 100.0}


def test_vc_video_of_exactly_n_frames_is_skipped_and_n_plus_1_has_one_window():
    acc = VCAccumulator((2, 3))
    acc.add_video(_video([[1]], [[1]], [[1]]), _video([[0]], [[0]], [[0]]))  # T = 3
    assert acc.num_windows() == {2: 1, 3: 0}
    assert acc.result()["mVC2"] == 100.0 and math.isnan(acc.result()["mVC3"])
    acc.add_video(*(_video(*[[[1]]] * 4),) * 2)  # T = 4: one window of 3
    assert acc.num_windows() == {2: 3, 3: 1}
    acc.add_video(_video([[1]]), _video([[1]]))  # T = 1: nothing
    acc.add_video(_video(), _video())  # T = 0: nothing
    assert acc.num_windows() == {2: 3, 3: 1}


def test_vc_prediction_flicker_by_hand():
    # GT constant everywhere; pixel (0, 1) flickers in frame 1; T = 4, n = 2: windows at 0 and 1
    gt = _video(*[[[3, 3], [4, 4]]] * 4)
    pred = _video([[0, 0], [1, 1]], [[0, 2], [1, 1]], [[0, 0], [1, 1]], [[0, 0], [1, 1]])
    counts = consistency_windows(gt, pred, (2, 3))
    np.testing.assert_array_equal(counts[2], [[3, 4], [3, 4]])
    np.testing.assert_array_equal(counts[3], [[3, 4]])
    acc = VCAccumulator((2, 3))
    scores = acc.add_video(gt, pred)
    np.testing.assert_allclose(scores[2], [0.75, 0.75])
    assert acc.result() == pytest.approx({"mVC2": 75.0, "mVC3": 75.0})


def test_vc_ground_truth_change_leaves_the_pixel_out():
    # pixel (0, 0): GT changes at frame 1 (prediction constant): not in numerator nor denominator;
    # pixel (0, 1): GT constant, prediction changes at frame 2; pixel (0, 2): both constant
    gt = _video([[1, 1, 1]], [[2, 1, 1]], [[2, 1, 1]], [[2, 1, 1]])
    pred = _video([[0, 0, 0]], [[0, 0, 0]], [[0, 3, 0]], [[0, 3, 0]])
    counts = consistency_windows(gt, pred, (2, 3))
    # n = 2, windows 0 (frames 0-1), 1 (1-2); n = 3, window 0 (frames 0-2)
    np.testing.assert_array_equal(counts[2], [[2, 2], [2, 3]])
    np.testing.assert_array_equal(counts[3], [[1, 2]])


def test_vc_ignore_label_is_a_label_like_any_other():
    # GT 255 (ignored by the mIoU) that stays 255 is constant: the flicker there counts; a pixel
    # going from "others" (0) to unlabelled (255) is a GT change (the masks' values as stored)
    gt = _video([[255, 0, 7]], [[255, 255, 7]], [[255, 255, 7]])
    pred = _video([[1, 1, 1]], [[2, 1, 1]], [[2, 1, 1]])
    np.testing.assert_array_equal(consistency_windows(gt, pred, (2,))[2], [[1, 2]])


def test_vc_window_without_a_constant_pixel_is_left_out_of_the_mean():
    acc = VCAccumulator((2,))
    # video 1: the GT changes everywhere between frames 1 and 2 -> window 1 is NaN
    scores = acc.add_video(_video([[1]], [[1]], [[2]], [[2]]), _video([[0]], [[1]], [[1]], [[1]]))
    np.testing.assert_array_equal(np.isnan(scores[2]), [False, True])
    assert scores[2][0] == 0.0
    assert acc.result()["mVC2"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NaN window is no 0 / 0 RuntimeWarning
        np.testing.assert_array_equal(window_scores(np.array([[0, 0], [1, 2]])), [np.nan, 0.5])


def test_vc_mean_over_all_windows_not_per_video():
    acc = VCAccumulator((2,))
    acc.add_video(_video([[1]], [[1]], [[1]]), _video([[0]], [[0]], [[0]]))  # 1 window, 1.0
    acc.add_video(
        *(_video([[1]], [[1]], [[1]], [[1]], [[1]]),) + (_video([[0]], [[1]], [[2]], [[3]], [[4]]),)
    )
    # 3 windows of 0.0: the mean of the 4 windows is 0.25 (a mean of the videos would be 0.5)
    assert acc.result()["mVC2"] == pytest.approx(25.0)


def test_vc16_holds_only_the_16_frame_windows():
    # DVIS++'s copy would average the 8- and 16-frame windows into its "VC16"
    gt = np.zeros((18, 1, 2), dtype=np.uint8)
    pred = np.zeros_like(gt)
    pred[8:, 0, 1] = 1  # a change between frames 7 and 8: inside every 16-frame window
    acc = VCAccumulator()
    acc.add_video(gt, pred)
    assert acc.num_windows() == {8: 10, 16: 2}
    # 8-frame windows starting at 0 (frames 0-7) and 8, 9 are constant; 1..7 are not
    assert acc.result() == pytest.approx({"mVC8": 100 * (3 + 7 * 0.5) / 10, "mVC16": 50.0})


def test_vc_merge_appends_in_order_and_checks_sizes():
    rs = np.random.RandomState(3)
    videos = [random_video(rs, t, (3, 4), 0.2) for t in (6, 9, 12)]
    whole, parts = VCAccumulator((2, 5)), [VCAccumulator((2, 5)) for _ in videos]
    for (gt, pred), part in zip(videos, parts):
        whole.add_video(gt, pred)
        part.add_video(gt, pred)
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.result() == whole.result() and merged.num_windows() == whole.num_windows()
    with pytest.raises(ValueError, match="cannot merge window sizes"):
        whole.merge(VCAccumulator((2,)))


@pytest.mark.parametrize(
    "gt, pred, message",
    [
        ([[[1]], [[1]]], [[[1]]], "frame 1: a ground-truth frame without a predicted frame"),
        ([[[1]]], [[[1]], [[1]]], "frame 1: a predicted frame without a ground-truth frame"),
        ([[[1]]], [[[1, 1]]], r"frame 0: expected .* one \(H, W\) shape"),
        ([[[1]], [[1, 1]]], [[[1]], [[1, 1]]], r"frame 1: size \(1, 2\) differs .* \(1, 1\)"),
    ],
)
def test_vc_bad_frames(gt, pred, message):
    with pytest.raises(ValueError, match=message):
        consistency_windows((np.array(g) for g in gt), (np.array(p) for p in pred), (2,))


@pytest.mark.parametrize("sizes", [(), (0,), (2, 0), (2, 2)])
def test_vc_bad_window_sizes(sizes):
    with pytest.raises(ValueError, match="window sizes"):
        VCAccumulator(sizes)


def test_vc_window_of_one_frame_scores_one():
    # the authors' loop over j in range(1, 1) compares nothing: every pixel is constant
    counts = consistency_windows(
        _video([[1, 2]], [[3, 4]], [[5, 6]]), _video(*[[[0, 1]]] * 3), (1,)
    )
    np.testing.assert_array_equal(counts[1], [[2, 2], [2, 2]])


def _brute_force(gt, pred, n):
    """The definition, window by window: starts 0 .. T - n - 1, all n frames equal."""
    rows = []
    for i in range(len(gt) - n):
        gt_constant = (gt[i : i + n] == gt[i]).all(axis=0)
        pred_constant = (pred[i : i + n] == pred[i]).all(axis=0)
        rows.append([np.count_nonzero(gt_constant & pred_constant), np.count_nonzero(gt_constant)])
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


@pytest.mark.parametrize("seed", range(6))
def test_vc_counts_equal_the_definition(seed):
    rs = np.random.RandomState(seed)
    gt, pred = random_video(rs, rs.randint(1, 40), (4, 5), rs.choice([0.02, 0.1, 0.3]))
    sizes = (1, 2, 3, 8, 16, 17)
    counts = consistency_windows(iter(gt), iter(pred), sizes)
    for n in sizes:
        np.testing.assert_array_equal(counts[n], _brute_force(gt, pred, n), err_msg=f"n={n}")


# ------------------------------------------------------------ equality with the authors' scripts


def random_video(rs, num_frames, size=(6, 8), p_change=0.04):
    """Raw VSPW mask values (0 others, 1..5, 255) drifting over time and predictions 0..4 that
    mostly follow them, with some flicker."""
    values = [0, 1, 2, 3, 4, 5, 255]
    raw = rs.choice(values, size=size, p=[0.1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1])
    pred = rs.randint(0, 5, size=size)
    gts, preds = [], []
    for _ in range(num_frames):
        raw = np.where(rs.rand(*size) < p_change, rs.choice(values, size=size), raw)
        follow = rs.rand(*size) < 0.8
        guess = np.where((raw >= 1) & (raw <= 5), raw.astype(np.int64) - 1, pred)
        flicker = rs.rand(*size) < 0.03
        pred = np.where(flicker, rs.randint(0, 5, size=size), np.where(follow, guess, pred))
        gts.append(raw.astype(np.uint8))
        preds.append(pred.astype(np.uint8))
    return np.array(gts).reshape(-1, *size), np.array(preds).reshape(-1, *size)


def remap(raw):
    """The VSPW authors' training labels: 0 and 255 -> 255, v -> v - 1."""
    label = raw.astype(np.int64) - 1
    label[(raw == 0) | (raw == 255)] = 255
    return label.astype(np.uint8)


# Produced once, outside the repo, by writing each case as a VSPW layout (masks = the raw values,
# predictions = the indices, 8-bit grey PNGs) and running the VSPW authors' VC_perclip.py
# (VSPW-dataset/VSPW_code @ 73b98ce, with clip_num set to 8, then 16) and DVIS++'s
# eval_miou_vspw.py (zhang-tao-whu/DVIS_Plus; the authors' Evaluator(124) with their -1 remap);
# numbers as printed (0..1). "dvis_VC16" is what DVIS++'s eval_vc_vspw.py prints as VC16 (its
# list still holds the 8-frame windows): not reproduced. Largest difference from this module:
# 5.6e-17 (ours is computed as 100 * mean, divided back by 100 here).
REFERENCE = {
    # seed: (video lengths, frame size, change probability, mIoU, VC8, VC16, dvis_VC16)
    1: ([5, 9, 12, 17, 20], (6, 8), 0.04, 0.8956496900650087, 0.7866230318838082,
        0.6559999999999999, 0.7655548009348071),
    2: ([8, 9, 16, 17, 3], (6, 8), 0.04, 0.8988662815670582, 0.804030929908123,
        0.7352941176470589, 0.8004132029470142),
    3: ([21, 18, 10, 1, 30], (6, 8), 0.04, 0.9126593728255921, 0.8330149002580824,
        0.6996470844397114, 0.791827780667115),
    4: ([19, 25, 17], (2, 3), 0.15, 0.8853058036560852, 0.8234234234234233,
        0.4166666666666667, 0.7666666666666667),
}  # fmt: skip


def random_case(seed, lengths, size, p_change):
    rs = np.random.RandomState(seed)
    return [random_video(rs, t, size, p_change) for t in lengths]


@pytest.mark.parametrize("seed", sorted(REFERENCE))
def test_equal_to_the_vspw_authors_scripts(seed):
    lengths, size, p_change, miou, vc8, vc16, dvis_vc16 = REFERENCE[seed]
    confusion, consistency = ConfusionAccumulator(124), VCAccumulator((8, 16))
    for gt, pred in random_case(seed, lengths, size, p_change):
        for g, p in zip(gt, pred):
            confusion.update(remap(g), p)
        consistency.add_video(gt, pred)  # the masks' values as stored
    result = consistency.result()
    assert confusion.miou() == pytest.approx(miou, abs=1e-15)
    assert result["mVC8"] / 100 == pytest.approx(vc8, abs=1e-15)
    assert result["mVC16"] / 100 == pytest.approx(vc16, abs=1e-15)
    assert abs(result["mVC16"] / 100 - dvis_vc16) > 0.01


def test_counters_do_not_wrap_around_in_long_videos():
    # the per-pixel counters are the smallest unsigned type that holds max(n); 260 frames would
    # wrap an 8-bit counter that was not capped, and n = 256 needs a 16-bit one
    frames = np.ones((260, 1, 1), dtype=np.uint8)
    counts = consistency_windows(frames, frames, (2, 256))
    np.testing.assert_array_equal(counts[2], np.ones((258, 2)))
    np.testing.assert_array_equal(counts[256], np.ones((4, 2)))
    np.testing.assert_array_equal(consistency_windows(frames, frames, (2,))[2], np.ones((258, 2)))


def test_empty_accumulators_and_result_types():
    assert all(math.isnan(v) for v in VCAccumulator().result().values())
    assert VCAccumulator().num_windows() == {8: 0, 16: 0}
    single = ConfusionAccumulator(1)  # one class: its IoU
    single.update(np.array([[0, 0, 255]]), np.array([[0, 0, 0]]))
    assert single.miou() == 1.0 and type(single.miou()) is float
    acc = VCAccumulator((2,))
    acc.add_video(_video([[1]], [[1]], [[1]]), _video([[0]], [[0]], [[0]]))
    assert type(acc.result()["mVC2"]) is float
