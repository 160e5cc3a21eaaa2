"""STQ (``evaluation/stq.py``): hand-computed tiny cases for every rule, equality with deeplab2's
NumPy ``STQuality`` and with VIPSeg's ``eval_stq_vspw.py`` (fixtures below), the two numberings
of ``panoptic_to_semantic_instance``, merging, and a bad-input table.

Classes of the hand-computed cases: 0 = road (stuff), 1 = car (thing), 2 = person (thing); V is
void (255). Frames are single rows so that every count can be read off the literal.
"""

import math
import re
import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from video_mask2former.evaluation.stq import (
    STQAccumulator,
    panoptic_to_semantic_instance,
    vipseg_segment_order,
)

V = 255
THINGS = (1, 2)


@dataclass(frozen=True)
class Seg:  # the fields of data.vps.Segment that STQ reads
    category_id: int
    iscrowd: bool = False


def _frame(*rows):
    return np.array([rows], dtype=np.int64).reshape(1, -1)


def _score(videos, num_classes=3, things=THINGS, **kwargs):
    """videos: {id: [(gt_sem, gt_ins, pred_sem, pred_ins) row lists per frame]} -> result()."""
    acc = STQAccumulator(num_classes, things, **kwargs)
    for video_id, frames in videos.items():
        for maps in frames:
            acc.update(*[np.array([m], dtype=np.int64) for m in maps], sequence_id=video_id)
    return acc.result()


def _check(result, stq=None, aq=None, sq=None):
    for key, value in (("STQ", stq), ("AQ", aq), ("SQ", sq)):
        if value is not None:
            assert result[key] == pytest.approx(value, abs=1e-12), key


# ------------------------------------------------------------------ hand-computed cases
def test_perfect_prediction_is_one():
    frame = ([0, 1, 1, 2, V], [0, 1, 1, 2, 0], [0, 1, 1, 2, 0], [0, 1, 1, 2, 0])
    result = _score({"a": [frame, frame]})
    _check(result, stq=1.0, aq=1.0, sq=1.0)
    assert result["Length_per_seq"] == [2] and result["ID_per_seq"] == ["a"]
    assert result["IoU_per_class"] == [1.0, 1.0, 1.0]
    values = [result[k] for k in ("STQ", "AQ", "SQ")] + result["SQ_per_seq"] + result["AQ_per_seq"]
    assert all(type(v) is float for v in values)  # plain floats: JSON-ready


def test_class_zero_can_be_a_thing():
    # deeplab2's own basic example: class 0 = car (thing), 1 = sky; an ID switch after 2 of 5
    frame = ([0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 2, 2, 2])
    _check(_score({"a": [frame]}, num_classes=2, things=(0,)), aq=0.52, sq=1.0)


def test_id_switch_halfway():
    # one car tube of 8 pixels; predicted as instance 1 in frame 0 and instance 7 in frame 1:
    # each part has TPA 4, FPA 0, FNA 4 -> AQ = (4*4/8 + 4*4/8) / 8 = 0.5
    frame0 = ([0, 1, 1, 1, 1], [0, 3, 3, 3, 3], [0, 1, 1, 1, 1], [0, 1, 1, 1, 1])
    frame1 = ([0, 1, 1, 1, 1], [0, 3, 3, 3, 3], [0, 1, 1, 1, 1], [0, 7, 7, 7, 7])
    _check(_score({"a": [frame0, frame1]}), stq=math.sqrt(0.5), aq=0.5, sq=1.0)


def test_false_positive_tube_leaves_aq_and_lowers_sq():
    # the extra car tube (instance 5 on road) overlaps no ground-truth tube: AQ stays 1;
    # SQ: road TP 1 / union 2, car TP 2 / union 3 -> (1/2 + 2/3) / 2 = 7/12
    frame = ([0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 1, 1], [5, 0, 1, 1])
    _check(_score({"a": [frame]}), stq=math.sqrt(7 / 12), aq=1.0, sq=7 / 12)


def test_prediction_tube_growing_over_a_false_positive_area():
    # the car tube predicted one pixel too large (on road): TPA 2, FPA 1 -> AQ = 2*2/3/2 = 2/3
    frame = ([0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1])
    _check(_score({"a": [frame]}), aq=2 / 3, sq=(1 / 2 + 2 / 3) / 2)


def test_void_ground_truth_is_ignored_by_sq():
    # road and a person tube predicted on void count nowhere in SQ; the person tube overlaps no
    # ground-truth tube, so AQ stays 1
    frame = ([V, V, 1, 1], [0, 0, 1, 1], [0, 2, 1, 1], [0, 3, 1, 1])
    result = _score({"a": [frame]})
    _check(result, stq=1.0, aq=1.0, sq=1.0)
    assert np.isnan(result["IoU_per_class"][0]) and np.isnan(result["IoU_per_class"][2])


def test_prediction_tube_on_void_counts_as_false_positive_area():
    # deeplab2's rule: a prediction tube's area includes its pixels on void ground truth
    frame = ([V, 0, 1, 1], [0, 0, 1, 1], [1, 0, 1, 1], [1, 0, 1, 1])
    _check(_score({"a": [frame]}), aq=2 / 3, sq=1.0)


def test_crowd_is_ignored_for_aq_but_counted_in_sq():
    # pixels 0-1 are a car crowd (instance 0): no tube, and predicted pixels on them leave the
    # prediction tube (otherwise AQ = 2*2/4/2 = 0.5)
    frame = ([1, 1, 1, 1], [0, 0, 4, 4], [1, 1, 1, 1], [9, 9, 9, 9])
    _check(_score({"a": [frame]}), stq=1.0, aq=1.0, sq=1.0)
    # in SQ the crowd is car: predicting road there costs road IoU 0 and car IoU 2/4
    frame = ([1, 1, 1, 1], [0, 0, 4, 4], [0, 0, 1, 1], [0, 0, 9, 9])
    _check(_score({"a": [frame]}), aq=1.0, sq=(0 + 0.5) / 2)


def test_predicted_instance_zero_is_an_ordinary_tube():
    frame = ([1, 1, 1, 1], [4, 4, 4, 4], [1, 1, 1, 1], [0, 0, 0, 0])
    _check(_score({"a": [frame]}), stq=1.0, aq=1.0, sq=1.0)


def test_aq_is_class_agnostic():
    # a car tube predicted as a person tube: perfect association, SQ 0 for both classes
    frame = ([1, 1], [4, 4], [2, 2], [4, 4])
    _check(_score({"a": [frame]}), stq=0.0, aq=1.0, sq=0.0)


def test_stuff_only_has_aq_zero():
    # no ground-truth tube: deeplab2 defines AQ = 0 / max(0, eps) = 0, hence STQ = 0;
    # SQ: road 2/4, car (predicted only) 0 -> 0.25
    frame = ([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 3, 3])
    result = _score({"a": [frame]})
    _check(result, stq=0.0, aq=0.0, sq=0.25)
    assert result["AQ_per_seq"] == [0.0] and result["STQ_per_seq"] == [0.0]
    _check(_score({"a": [frame]}, things=()), stq=0.0, aq=0.0, sq=0.25)


def test_void_prediction_on_labelled_pixel_counts_a_void_slot():
    # deeplab2's rule: a void prediction on road is a road false negative AND gives the void
    # slot a non-zero union, so it enters the mean with IoU 0: (3/4 + 0) / 2
    frame = ([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, V], [0, 0, 0, 0])
    result = _score({"a": [frame]})
    _check(result, sq=3 / 8)
    assert result["IoU_per_class"][0] == pytest.approx(0.75)


def test_ignore_label_inside_the_class_range():
    # ignore_label=0: class 0 is void (its row is dropped), slot 0 is the void slot
    frame = ([0, 1, 1, 2], [0, 1, 1, 2], [1, 1, 1, 0], [1, 1, 1, 0])
    result = _score({"a": [frame]}, ignore_label=0)
    # car: TP 2, pred 3 (one on void) -> IoU 1 (the void row is removed); person: GT 1, TP 0,
    # pred 0 -> IoU 0; void slot: predicted on the person pixel -> union 1, IoU 0
    _check(result, sq=(1 + 0 + 0) / 3)
    # car tube: TPA 2, |p| = 3 (one pixel on void) -> 4/3/2 = 2/3; person tube: no overlap
    _check(result, aq=(2 / 3 + 0) / 2)
    assert np.isnan(result["IoU_per_class"][0])


def test_aq_is_pooled_over_tubes_and_sq_over_one_confusion_matrix():
    switch = [
        ([1, 1], [3, 3], [1, 1], [1, 1]),
        ([1, 1], [3, 3], [1, 1], [2, 2]),
    ]  # one tube, AQ 0.5
    perfect = [([1, 2, 0, 0], [3, 4, 0, 0], [1, 2, 1, 1], [3, 4, 5, 5])]  # two tubes, AQ 1
    result = _score({"switch": switch, "perfect": perfect})
    assert result["AQ_per_seq"] == pytest.approx([0.5, 1.0])
    _check(result, aq=(0.5 + 2.0) / 3)  # not the mean of the videos (0.75)
    # per video SQ: switch 1; perfect: road 0/2, car 1/3, person 1 -> 4/9
    assert result["SQ_per_seq"] == pytest.approx([1.0, 4 / 9])
    # pooled: road 0/2, car 5/7 (TP 5, GT 5, pred 7), person 1 -> (0 + 5/7 + 1) / 3
    _check(result, sq=(5 / 7 + 1) / 3)
    assert result["STQ_per_seq"] == pytest.approx([math.sqrt(0.5), math.sqrt(4 / 9)])
    assert result["ID_per_seq"] == ["switch", "perfect"]
    assert result["Length_per_seq"] == [2, 1]


def test_empty_accumulator_gives_nan_like_deeplab2():
    result = STQAccumulator(3, THINGS).result()
    assert result["AQ"] == 0.0 and math.isnan(result["SQ"]) and math.isnan(result["STQ"])
    assert result["STQ_per_seq"] == []


def test_all_void_video_has_nan_sq():
    result = _score({"a": [([V, V], [0, 0], [0, 1], [0, 2])]})
    assert math.isnan(result["SQ"]) and result["AQ"] == 0.0


# ------------------------------------------------------------------ generated cases
def _random_case(seed, num_classes=5, ignore_label=V, videos=3, frames=3, shape=(12, 10)):
    """Random videos with things 1 and 3 (``np.random.RandomState``: the same numbers on every
    NumPy): 2x2-blocky classes with 20% noise, instances 0..3 (0 on a ground-truth thing is
    crowd), about 10% void ground truth and 5% void prediction, predictions perturbed from the
    ground truth. Returns [[(gt_sem, gt_ins, pred_sem, pred_ins) per frame] per video]."""
    rng = np.random.RandomState(seed)
    h, w = shape

    def blocky(high):
        small = rng.randint(0, high, (h // 2, w // 2))
        full = np.repeat(np.repeat(small, 2, 0), 2, 1)
        noise = rng.rand(h, w) < 0.2
        full[noise] = rng.randint(0, high, noise.sum())
        return full

    def void(array, share):
        array[rng.rand(h, w) < share] = ignore_label
        return array

    out = []
    for _ in range(videos):
        frame_list = []
        for _ in range(frames):
            gt_sem, gt_ins = blocky(num_classes), blocky(4)
            pred_sem, pred_ins = gt_sem.copy(), rng.permutation(4)[gt_ins]
            changed = rng.rand(h, w) < 0.3
            pred_sem[changed] = rng.randint(0, num_classes, changed.sum())
            pred_ins[changed] = rng.randint(0, 4, changed.sum())
            frame_list.append((void(gt_sem, 0.1), gt_ins, void(pred_sem, 0.05), pred_ins))
        out.append(frame_list)
    return out


# VIPSeg categories used by _vipseg_case (ids = class indices, as in VIPSeg): 0 wall, 1 ceiling,
# 3 stair (stuff); 2 door, 4 ladder (things). VIPSeg has 124 classes.
VIPSEG_CLASSES, VIPSEG_THINGS = 124, (2, 4)
VIPSEG_IDENTITY = {c: c for c in range(VIPSEG_CLASSES)}


def _vipseg_case(seed, frames=3, shape=(8, 12)):
    """Two VIPSeg-format videos (segment id maps + segments in JSON order). Video "v0" lists a
    door first (the VIPSeg script makes it crowd), video "v1" lists the wall first and has a crowd
    door. Returns {video_id: [(gt_ids, [(id, category, iscrowd)], pred_ids, [(id, category)])]}."""
    rng = np.random.RandomState(seed)
    h, w = shape
    pools = {  # JSON order of each video's ground-truth segments: (id, category, iscrowd)
        "v0": [(70001, 2, 0), (5001, 0, 0), (70002, 2, 0), (90001, 4, 0), (6001, 1, 0)],
        "v1": [(5002, 0, 0), (70003, 2, 0), (70004, 2, 1), (90002, 4, 0), (8001, 3, 0)],
    }
    out = {}
    for video_id, pool in pools.items():
        pred_ids = {seg_id: 300 + k for k, (seg_id, _, _) in enumerate(pool)}
        frame_list = []
        for _ in range(frames):
            present = [seg for seg in pool if rng.rand() < 0.85] or pool[:1]
            small = rng.randint(0, len(present), (h // 2, w // 2))
            gt = np.array([seg[0] for seg in present])[np.repeat(np.repeat(small, 2, 0), 2, 1)]
            gt[rng.rand(h, w) < 0.1] = 0  # void
            pred = np.vectorize(lambda i: pred_ids.get(i, 0))(gt)
            swap = rng.rand(h, w) < 0.25
            pred[swap] = rng.choice(list(pred_ids.values()), swap.sum())
            pred[rng.rand(h, w) < 0.05] = 0
            gt_segments = [seg for seg in pool if seg[0] in set(gt.ravel().tolist())]
            pred_categories = {300 + k: cat for k, (_, cat, _) in enumerate(pool)}
            pred_categories[300 + len(pool) - 1] = 2  # one predicted class differs from the GT
            pred_segments = [(int(i), pred_categories[i]) for i in sorted(set(pred.ravel()) - {0})]
            frame_list.append((gt, gt_segments, pred, pred_segments))
        out[video_id] = frame_list
    return out


def _score_vipseg(case, vipseg_numbering):
    """Score a _vipseg_case through panoptic_to_semantic_instance + STQAccumulator."""
    acc = STQAccumulator(VIPSEG_CLASSES, VIPSEG_THINGS)
    for video_id, frames in case.items():
        gt_order = vipseg_segment_order([[s[0] for s in f[1]] for f in frames])
        pred_order = vipseg_segment_order([[s[0] for s in f[3]] for f in frames])
        for gt, gt_segments, pred, pred_segments in frames:
            gt_maps = panoptic_to_semantic_instance(
                gt,
                {i: Seg(c, bool(crowd)) for i, c, crowd in gt_segments},
                VIPSEG_IDENTITY,
                VIPSEG_THINGS,
                vipseg_numbering=vipseg_numbering,
                video_segment_order=gt_order,
            )
            pred_maps = panoptic_to_semantic_instance(
                pred,
                dict(pred_segments),
                VIPSEG_IDENTITY,
                VIPSEG_THINGS,
                vipseg_numbering=vipseg_numbering,
                video_segment_order=pred_order,
            )
            acc.update(*gt_maps, *pred_maps, sequence_id=video_id)
    return acc.result()


# ------------------------------------------------------------------ reference fixtures
# Produced once by a script outside the repository (/work/ref20/h6/make_fixtures.py; the reference
# code is never committed). DEEPLAB2: deeplab2's NumPy STQuality as VIPSeg and DVIS ship it
# (VIPSeg-Dataset ClipPanoFCN/segmentation_and_tracking_quality.py, deeplab2 of 2021, integer
# counts; the only change: np.bool -> bool) with label_bit_shift 16 and offset 2^24, on
# _random_case(seed, ignore_label=ignore) with K=5, things (1, 3), each map encoded as
# (semantic << 16) + instance and videos numbered 0, 1, 2. Largest difference: 5.6e-17.
DEEPLAB2 = {
    (0, 255): dict(
        STQ=0.26417673220481963,
        AQ=0.14300307520575353,
        SQ=0.4880268884987525,
        AQ_per_seq=[0.1825317038573071, 0.1309364329372528, 0.11554108882270071],
        SQ_per_seq=[0.481335662388294, 0.47825411590285843, 0.5005554910718764],
    ),
    (1, 255): dict(
        STQ=0.2819085805858726,
        AQ=0.1672922461732811,
        SQ=0.4750515916058893,
        AQ_per_seq=[0.20601912018656385, 0.14113904629549598, 0.15471857203778344],
        SQ_per_seq=[0.4673278158295282, 0.47939274909412993, 0.46567761228753907],
    ),
    (2, 255): dict(
        STQ=0.2691146414353767,
        AQ=0.15148182757040696,
        SQ=0.47809490680477945,
        AQ_per_seq=[0.12571412716824032, 0.17684593241672072, 0.15188542312625974],
        SQ_per_seq=[0.4891952700999232, 0.47279902957582937, 0.47344876087573756],
    ),
    (3, 255): dict(
        STQ=0.27366463294759713,
        AQ=0.15075909607379265,
        SQ=0.4967682433548501,
        AQ_per_seq=[0.16575871136240108, 0.15371455280085408, 0.13280402405812272],
        SQ_per_seq=[0.4916804348109132, 0.4845038443723637, 0.5037163529739958],
    ),
    (4, 0): dict(
        STQ=0.2966009375135223,
        AQ=0.18142161696185244,
        SQ=0.48490426668613723,
        AQ_per_seq=[0.16899891342156323, 0.25277332122404744, 0.12249261623994662],
        SQ_per_seq=[0.5030585419026653, 0.4837517144133788, 0.46503409355610614],
    ),
    (5, 5): dict(
        STQ=0.3510336392373278,
        AQ=0.24378420473533768,
        SQ=0.5054659550645628,
        AQ_per_seq=[0.27128939707308275, 0.17061483655795784, 0.2894483805749725],
        SQ_per_seq=[0.49818827641824415, 0.5090110155442944, 0.5024034882989753],
    ),
}
# deeplab2 HEAD (google-research/deeplab2 64bc1c1, 2023) on the same cases: (STQ, AQ, SQ). It sums
# tube areas in float32 under NumPy 2, so its AQ is float32-precise: largest difference 1.3e-8.
DEEPLAB2_HEAD = {
    (0, 255): (0.26417673628796356, 0.1430030796262953, 0.4880268884987525),
    (1, 255): (0.28190857309423717, 0.16729223728179932, 0.4750515916058893),
    (2, 255): (0.2691146527832395, 0.15148184034559461, 0.47809490680477945),
    (3, 255): (0.27366462531878855, 0.15075908766852486, 0.4967682433548501),
    (4, 0): (0.2966009435034983, 0.1814216242896186, 0.48490426668613723),
    (5, 5): (0.3510336471424743, 0.2437842157151964, 0.5054659550645628),
}
# VIPSeg's eval_stq_vspw.py (VIPSeg-Dataset e00eaee; DVIS / DVIS++ ship the same file), unchanged,
# with the deeplab2 copy above, on _vipseg_case(seed) written as RGB id PNGs + its JSON files (all
# 124 VIPSeg categories): (STQ, AQ, IoU) as printed. Largest difference: 5.6e-17.
VIPSEG_SCRIPT = {
    0: (0.38419254752494, 0.4920113668222442, 0.30000102340527873),
    1: (0.3770588078773301, 0.48387977845462926, 0.29381956206546483),
    2: (0.3916938223376276, 0.47760900432177084, 0.3212335803327891),
}


@pytest.mark.parametrize("seed, ignore", list(DEEPLAB2))
def test_equals_deeplab2(seed, ignore):
    acc = STQAccumulator(5, (1, 3), ignore_label=ignore, max_instances_per_category=2**16)
    for video, frames in enumerate(_random_case(seed, ignore_label=ignore)):
        for maps in frames:
            acc.update(*maps, sequence_id=video)
    result, expected = acc.result(), DEEPLAB2[(seed, ignore)]
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key
    per_seq = np.sqrt(np.multiply(expected["AQ_per_seq"], expected["SQ_per_seq"]))
    assert result["STQ_per_seq"] == pytest.approx(per_seq.tolist(), abs=1e-12)
    assert result["Length_per_seq"] == [3, 3, 3] and result["ID_per_seq"] == [0, 1, 2]
    head = [result[key] for key in ("STQ", "AQ", "SQ")]
    assert head == pytest.approx(DEEPLAB2_HEAD[(seed, ignore)], abs=1e-7)


@pytest.mark.parametrize("seed", list(VIPSEG_SCRIPT))
def test_vipseg_numbering_equals_the_vipseg_script(seed):
    result = _score_vipseg(_vipseg_case(seed), vipseg_numbering=True)
    assert [result[k] for k in ("STQ", "AQ", "SQ")] == pytest.approx(VIPSEG_SCRIPT[seed], abs=1e-12)
    # the default numbering keeps v0's first door and scores v1's crowd door as crowd
    default = _score_vipseg(_vipseg_case(seed), vipseg_numbering=False)
    assert default["SQ"] == pytest.approx(result["SQ"], abs=1e-12)
    assert abs(default["AQ"] - result["AQ"]) > 1e-3


# ------------------------------------------------------------------ the two numberings
CATEGORIES = {10: 0, 11: 1, 12: 2}  # category id -> class index (road, car, person)
GT_SEGMENTS = {7: Seg(11), 5: Seg(10), 9: Seg(11), 4: Seg(12, iscrowd=True)}  # JSON order


def test_default_numbering():
    ids = _frame(7, 5, 9, 4, 0)
    semantic, instance = panoptic_to_semantic_instance(ids, GT_SEGMENTS, CATEGORIES, THINGS)
    assert semantic.tolist() == [[1, 0, 1, 2, V]]
    assert instance.tolist() == [[7, 0, 9, 0, 0]]  # thing -> its id, stuff / crowd / void -> 0
    assert semantic.dtype == instance.dtype == np.int64
    semantic, _ = panoptic_to_semantic_instance(
        ids, GT_SEGMENTS, CATEGORIES, THINGS, ignore_label=9
    )
    assert semantic.tolist() == [[1, 0, 1, 2, 9]]
    # predictions: plain category ids
    semantic, instance = panoptic_to_semantic_instance(
        _frame(3, 0, 8), {3: 11, 8: 10}, CATEGORIES, THINGS
    )
    assert semantic.tolist() == [[1, V, 0]] and instance.tolist() == [[3, 0, 0]]


def test_vipseg_numbering_numbers_every_segment_in_json_order():
    order = vipseg_segment_order([[7, 5], [5, 9, 4], [4, 7]])
    assert order == [7, 5, 9, 4]
    semantic, instance = panoptic_to_semantic_instance(
        _frame(7, 5, 9, 4, 0),
        GT_SEGMENTS,
        CATEGORIES,
        THINGS,
        vipseg_numbering=True,
        video_segment_order=order,
    )
    assert semantic.tolist() == [[1, 0, 1, 2, V]]
    assert instance.tolist() == [[0, 1, 2, 3, 0]]  # iscrowd is not read


def test_vipseg_numbering_drops_the_first_thing_segment():
    # JSON lists car 7 first, then road 5, then car 9. Prediction: one car tube over both cars.
    # Default: tubes 7 (2 px) and 9 (1 px); the predicted tube (3 px) overlaps 2 and 1:
    # AQ = (2*2/3/2 + 1*1/3/1) / 2 = 1/2. VIPSeg numbering: car 7 gets instance 0 = crowd, so it
    # is no tube and the prediction on it leaves the predicted tube (1 px): AQ = 1.
    gt_ids, pred_ids = _frame(7, 7, 5, 9), _frame(3, 3, 8, 3)
    pred_segments = {3: 11, 8: 10}
    results = {}
    for vipseg in (False, True):
        acc = STQAccumulator(3, THINGS)
        gt = panoptic_to_semantic_instance(
            gt_ids,
            GT_SEGMENTS,
            CATEGORIES,
            THINGS,
            vipseg_numbering=vipseg,
            video_segment_order=[7, 5, 9, 4],
        )
        pred = panoptic_to_semantic_instance(
            pred_ids,
            pred_segments,
            CATEGORIES,
            THINGS,
            vipseg_numbering=vipseg,
            video_segment_order=[3, 8],
        )
        acc.update(*gt, *pred, sequence_id="v")
        results[vipseg] = acc.result()
    _check(results[False], aq=0.5, sq=1.0)
    _check(results[True], aq=1.0, sq=1.0)


def test_vipseg_numbering_scores_crowd_segments_as_tubes():
    # person 4 is a crowd: default -> no tube, AQ counts car 7 only (perfect); VIPSeg numbering ->
    # person 4 is a tube (instance 3) that the prediction splits in halves: (1/2 + 1/2 ... )
    gt_ids, pred_ids = _frame(7, 4, 4), _frame(1, 2, 3)
    pred_segments = {1: 11, 2: 12, 3: 12}
    scores = []
    for vipseg in (False, True):
        acc = STQAccumulator(3, THINGS)
        gt = panoptic_to_semantic_instance(
            gt_ids,
            GT_SEGMENTS,
            CATEGORIES,
            THINGS,
            vipseg_numbering=vipseg,
            video_segment_order=[7, 5, 9, 4],
        )
        pred = panoptic_to_semantic_instance(
            pred_ids,
            pred_segments,
            CATEGORIES,
            THINGS,
            vipseg_numbering=vipseg,
            video_segment_order=[1, 2, 3],
        )
        acc.update(*gt, *pred, sequence_id="v")
        scores.append(acc.result()["AQ"])
    # VIPSeg: car 7 -> instance 0 (crowd); person tube: two parts of TPA 1, |p| 1, |g| 2:
    # (1*1/2 + 1*1/2) / 2 = 1/2
    assert scores == pytest.approx([1.0, 0.5])


# ------------------------------------------------------------------ merging, overlap tables
def _accumulate(videos, acc=None):
    acc = acc or STQAccumulator(5, (1, 3))
    for video, frames in videos:
        for maps in frames:
            acc.update(*maps, sequence_id=video)
    return acc


def test_merge_equals_one_accumulator_and_survives_pickling():
    videos = list(enumerate(_random_case(0)))
    whole = _accumulate(videos).result()
    first = _accumulate(videos[:1])
    second = pickle.loads(pickle.dumps(_accumulate(videos[1:])))  # from a worker process
    first.merge(second)
    merged = first.result()
    for key in ("STQ", "AQ", "SQ", "STQ_per_seq", "AQ_per_seq", "SQ_per_seq", "IoU_per_class"):
        np.testing.assert_allclose(merged[key], whole[key], rtol=0, atol=1e-15, err_msg=key)
    assert merged["ID_per_seq"] == [0, 1, 2] and merged["Length_per_seq"] == [3, 3, 3]


def test_merge_refuses_shared_videos_and_other_settings():
    videos = list(enumerate(_random_case(0, videos=1)))
    with pytest.raises(ValueError, match=r"both hold videos \[0\]"):
        _accumulate(videos).merge(_accumulate(videos))
    for other in (
        STQAccumulator(6, (1, 3)),
        STQAccumulator(5, (1,)),
        STQAccumulator(5, (1, 3), ignore_label=0),
        STQAccumulator(5, (1, 3), max_instances_per_category=2**16),
        STQAccumulator(5, (1, 3), offset=2**32),
    ):
        with pytest.raises(ValueError, match="other settings"):
            _accumulate(videos).merge(other)


def test_update_overlaps_equals_update():
    frames = _random_case(3, videos=1, frames=2)[0]
    by_maps = _accumulate([("v", frames)])
    by_table = STQAccumulator(5, (1, 3))
    for maps in frames:
        columns = np.stack([m.ravel() for m in maps])  # (4, H*W)
        rows, pixels = np.unique(columns, axis=1, return_counts=True)
        # split each combination's pixels over two rows: duplicates must add up
        half = pixels // 2
        by_table.update_overlaps(
            *np.concatenate([rows, rows], 1), np.concatenate([half, pixels - half]), "v"
        )
    assert by_table.result() == pytest.approx(by_maps.result(), nan_ok=True)


# ------------------------------------------------------------------ bad inputs
def _maps(**changes):
    maps = dict(
        gt_semantic=_frame(0, 1),
        gt_instance=_frame(0, 1),
        pred_semantic=_frame(0, 1),
        pred_instance=_frame(0, 1),
    )
    maps.update(changes)
    return maps


BAD_UPDATES = [
    ("3-D map", _maps(gt_semantic=np.zeros((1, 1, 2), np.int64)), "gt_semantic must be a 2-D"),
    ("float map", _maps(pred_instance=np.zeros((1, 2))), "pred_instance must be a 2-D integer"),
    ("other size", _maps(pred_semantic=_frame(0, 1, 1)), "pred_semantic has shape (1, 3)"),
    ("class too large", _maps(gt_semantic=_frame(0, 3)), "gt_semantic holds [3]"),
    ("negative class", _maps(pred_semantic=_frame(-1, 0)), "pred_semantic holds [-1]"),
    ("negative instance", _maps(gt_instance=_frame(-2, 0)), "gt_instance holds values in -2..0"),
    ("instance too large", _maps(pred_instance=_frame(0, 16)), "pred_instance holds values in "),
    ("instance limit", _maps(pred_instance=_frame(0, 16)), "0..16; expected 0..15"),
    ("first map's size", _maps(gt_semantic=_frame(0, 1, 1)), "gt_instance has shape (1, 2), gt_"),
]


@pytest.mark.parametrize("what, maps, message", BAD_UPDATES, ids=[r[0] for r in BAD_UPDATES])
def test_bad_update(what, maps, message):
    acc = STQAccumulator(3, THINGS, max_instances_per_category=16)
    with pytest.raises(ValueError) as error:
        acc.update(**maps, sequence_id="video_7")
    assert message in str(error.value) and "'video_7'" in str(error.value)
    assert acc.result()["ID_per_seq"] == []  # nothing was counted


def test_overlap_table_pixel_counts_are_not_class_indices():
    acc = STQAccumulator(3, THINGS)
    acc.update_overlaps([0, 1], [0, 1], [0, 1], [0, 2], np.array([1000, 7]), "v")
    _check(acc.result(), aq=1.0, sq=1.0)


def test_bad_overlap_table():
    acc = STQAccumulator(3, THINGS)
    ok = np.array([0, 1])
    with pytest.raises(ValueError, match="pixels holds values in -1..1"):
        acc.update_overlaps(ok, ok, ok, ok, np.array([-1, 1]), "v")
    with pytest.raises(ValueError, match="pixels must be a 1-D integer"):
        acc.update_overlaps(ok, ok, ok, ok, np.array([1.0, 1.0]), "v")


BAD_SETTINGS = [
    (dict(num_classes=0, thing_classes=()), "num_classes must be a positive integer"),
    (dict(num_classes=2.5, thing_classes=()), "num_classes must be a positive integer, got 2.5"),
    (dict(num_classes=3, thing_classes=(3,)), "thing_classes [3] are not class indices"),
    (dict(num_classes=3, thing_classes=(0,), ignore_label=0), "thing_classes [0]"),
    (dict(num_classes=3, thing_classes=(), max_instances_per_category=0), "max_instances"),
    (dict(num_classes=3, thing_classes=(), max_instances_per_category=4, offset=15), "below"),
    (dict(num_classes=200, thing_classes=()), "does not fit in int64"),
]


@pytest.mark.parametrize("kwargs, message", BAD_SETTINGS)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        STQAccumulator(**kwargs)


def test_offset_bounds_are_inclusive():
    # (classes + void) * M = 16 is the smallest offset; 180 classes fit with the default M
    assert STQAccumulator(3, (), max_instances_per_category=4, offset=16).offset == 16
    STQAccumulator(180, ())
    # the largest combination key, 1 * offset + 1, may be exactly the int64 maximum
    acc = STQAccumulator(1, (), max_instances_per_category=1, offset=2**63 - 2)
    acc.update(_frame(0, 0, V), _frame(0, 0, 0), _frame(0, V, 0), _frame(0, 0, 0), "v")
    assert acc.result()["SQ"] == 0.25  # class 0: TP 1 / union 2; void slot: union 1, IoU 0
    with pytest.raises(ValueError, match="does not fit in int64"):
        STQAccumulator(1, (), max_instances_per_category=1, offset=2**63 - 1)
    assert STQAccumulator(1, ()).result()["ID_per_seq"] == []  # one class is enough


BAD_FRAMES = [
    ("float ids", dict(ids=np.zeros((1, 2))), "2-D array of non-negative integers"),
    ("negative id", dict(ids=_frame(-1, 7)), "2-D array of non-negative integers"),
    ("id not in segments", dict(ids=_frame(7, 8, 0)), "segment ids [8]"),
    ("unknown category", dict(segments={7: Seg(99)}), "segment 7 has category 99"),
    ("segment id 0", dict(segments={0: Seg(11), 7: Seg(11)}), "segment id 0 is void"),
    ("no order", dict(vipseg_numbering=True), "needs video_segment_order"),
    (
        "id not in order",
        dict(vipseg_numbering=True, video_segment_order=[5]),
        "segment 7 is not in video_segment_order",
    ),
]


@pytest.mark.parametrize("what, changes, message", BAD_FRAMES, ids=[r[0] for r in BAD_FRAMES])
def test_bad_panoptic_frame(what, changes, message):
    kwargs = dict(ids=_frame(7, 0), segments={7: Seg(11)}, category_to_index=CATEGORIES)
    kwargs.update(changes)
    with pytest.raises(ValueError, match=re.escape(message)):
        panoptic_to_semantic_instance(thing_indices=THINGS, **kwargs)


# Mutation testing (/work/notes/mutate.py on evaluation/stq.py): survivors shown equivalent —
# - ``np.zeros(self.num_classes + 1, bool)`` -> ``+ 2`` for the thing lookup: slots only go up to
#   K, so the extra entry is never read.
# - ``astype(np.int64, copy=False)`` -> ``copy=True`` in the input check: only saves a copy.
# - ``names[0:4:2]`` -> ``names[0:5:2]`` (or ``arrays[0:4:2]`` -> ``arrays[0:5:2]``) in the class
#   range check: ``zip`` stops at the shorter of the two slices, which still has the two semantic
#   entries, so the same two arrays are checked.
