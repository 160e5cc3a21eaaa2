"""Drawing video panoptic / semantic results (video_mask2former.visualization.segments) on tiny
frames: thing colours follow the segment id through the video, stuff and semantic classes take
their class colour, void is not drawn, bad maps are refused."""

import numpy as np
import pytest
import torch

from video_mask2former.visualization import segments
from video_mask2former.visualization.draw import MASK_ALPHA, track_color

H, W = 64, 96
GREY = 100
NAMES = ["person", "car", "sky", "road"]
COLORS = [(220, 20, 60), (0, 0, 142), (70, 130, 180), (128, 64, 128)]
# Classes 0, 1 are things; 2, 3 stuff.
SKY, ROAD = 2, 3


def _blend(color):
    """A pixel of the grey frame under ``color`` at the overlay's opacity."""
    return tuple(int(round((1 - MASK_ALPHA) * GREY + MASK_ALPHA * c)) for c in color)


def _frame():
    return np.full((H, W, 3), GREY, np.uint8)


def _panoptic(thing_at, thing_id=3, other_thing=False):
    """A panoptic frame: sky on top, road below, one thing (class 0) at rows ``thing_at``, a
    void strip at the bottom; ids as the model numbers them (thing = query + 1, stuff Q+1+c)."""
    ids = np.zeros((H, W), np.int32)
    ids[:24] = 20 + SKY
    ids[24:56] = 20 + ROAD
    ids[thing_at[0] : thing_at[1], 50:70] = thing_id
    infos = [
        {"id": 20 + SKY, "category_id": SKY, "isthing": False, "score": 0.9},
        {"id": 20 + ROAD, "category_id": ROAD, "isthing": False, "score": 0.8},
        {"id": thing_id, "category_id": 0, "isthing": True, "score": 0.95},
    ]
    if other_thing:  # a second thing of the same class elsewhere
        ids[28:40, 0:12] = 7
        infos.append({"id": 7, "category_id": 0, "isthing": True, "score": 0.7})
    return ids, infos


def test_thing_keeps_the_colour_of_its_id_across_frames_and_stuff_takes_its_class_colour():
    classes = segments.SegmentClasses(NAMES, COLORS)
    drawn = []
    for rows in ((4, 18), (34, 48)):  # the thing moves from the sky to the road
        ids, infos = _panoptic(rows, other_thing=True)
        drawn.append(segments.draw_panoptic_frame(_frame(), torch.as_tensor(ids), infos, classes))
    first, second = drawn
    thing = _blend(track_color(3))
    # Pixels are sampled inside the regions, away from the labels (above the regions' top-left
    # corners) and the outlines.
    assert tuple(first[16, 68]) == thing and tuple(second[46, 68]) == thing
    # Another segment of the same class has its own colour (ids, not classes, colour things).
    assert tuple(first[38, 10]) == _blend(track_color(7)) != thing
    # Stuff: the class colour from the metadata, also where the thing was before.
    assert tuple(first[22, 90]) == tuple(second[16, 68]) == _blend(COLORS[SKY])
    assert tuple(first[50, 90]) == tuple(second[50, 90]) == _blend(COLORS[ROAD])
    # Void (id 0) is not drawn.
    assert (first[57:] == GREY).all() and (second[57:] == GREY).all()


def test_stuff_without_metadata_colours_takes_the_palette():
    classes = segments.SegmentClasses(NAMES)
    ids, infos = _panoptic((4, 18))
    out = segments.draw_panoptic_frame(_frame(), ids, infos, classes)
    assert tuple(out[50, 90]) == _blend(segments.class_color(ROAD))
    assert segments.class_color(ROAD) == classes.colors[ROAD]
    assert len({segments.class_color(i) for i in range(20)}) == 20


def test_panoptic_labels_name_the_class_and_the_thing_id(monkeypatch):
    seen = []
    real = segments.draw_instances

    def recording(frame, masks, colors, labels, alpha):
        seen.extend(labels)
        return real(frame, masks, colors, labels, alpha)

    monkeypatch.setattr(segments, "draw_instances", recording)
    ids, infos = _panoptic((4, 18))
    segments.draw_panoptic_frame(_frame(), ids, infos, segments.SegmentClasses(NAMES))
    # Things first, then stuff by decreasing area (road 32 rows, sky 24 minus the thing).
    assert seen == ["person #3", "road", "sky"]


def test_semantic_frame_in_class_colours_with_labels(monkeypatch):
    seen = []
    real = segments.draw_instances
    monkeypatch.setattr(
        segments,
        "draw_instances",
        lambda f, m, c, labels, a: seen.extend(labels) or real(f, m, c, labels, a),
    )
    labels = np.full((H, W), SKY, np.int64)
    labels[40:] = 0
    out = segments.draw_semantic_frame(_frame(), labels, segments.SegmentClasses(NAMES, COLORS))
    assert tuple(out[30, 90]) == _blend(COLORS[SKY]) and tuple(out[60, 90]) == _blend(COLORS[0])
    assert seen == ["sky", "person"]  # by decreasing area


def test_a_frame_of_void_is_returned_undrawn():
    out = segments.draw_panoptic_frame(
        _frame(), np.zeros((H, W), np.int32), [], segments.SegmentClasses(NAMES)
    )
    assert (out == GREY).all()


def test_draw_frame_segmentation_dispatches_on_the_kind():
    from video_mask2former.inference.segment_windows import FrameSegmentation

    classes = segments.SegmentClasses(NAMES, COLORS)
    ids, infos = _panoptic((4, 18))
    result = FrameSegmentation(index=4, seg=torch.as_tensor(ids), segments_info=infos)
    direct = segments.draw_panoptic_frame(_frame(), ids, infos, classes)
    assert np.array_equal(
        segments.draw_frame_segmentation(_frame(), result, "panoptic", classes), direct
    )
    semantic = FrameSegmentation(index=0, seg=torch.full((H, W), ROAD))
    out = segments.draw_frame_segmentation(_frame(), semantic, "semantic", classes)
    assert tuple(out[30, 90]) == _blend(COLORS[ROAD])
    with pytest.raises(ValueError, match="kind must be one of"):
        segments.draw_frame_segmentation(_frame(), semantic, "instance", classes)


# --- bad inputs: (what is wrong, how to call, text the error must contain) ------------------
def _ids_and_infos():
    return _panoptic((4, 18))


BAD = [
    (
        "an id of the map absent from segments_info",
        lambda c: segments.draw_panoptic_frame(
            _frame(), _ids_and_infos()[0], _ids_and_infos()[1][:2], c
        ),
        "segment ids [3] are in the map, not in segments_info",
    ),
    (
        "a map of another size",
        lambda c: segments.draw_semantic_frame(_frame(), np.zeros((8, 8), np.int64), c),
        "the map is (8, 8), the frame (64, 96)",
    ),
    (
        "a float map",
        lambda c: segments.draw_semantic_frame(_frame(), np.zeros((H, W), np.float32), c),
        "expected an (H, W) integer map",
    ),
    (
        "a semantic class outside [0, K)",
        lambda c: segments.draw_semantic_frame(_frame(), np.full((H, W), 4), c),
        "class 4, expected 0..3",
    ),
    (
        "a segment of class K",
        lambda c: segments.draw_panoptic_frame(
            _frame(),
            np.ones((H, W), np.int32),
            [{"id": 1, "category_id": 4, "isthing": False}],
            c,
        ),
        "segment 1: class 4, expected 0..3",
    ),
    (
        "colours for another number of classes",
        lambda c: segments.SegmentClasses(NAMES, COLORS[:3]),
        "3 colours for 4 classes",
    ),
    (
        "a colour out of range",
        lambda c: segments.SegmentClasses(NAMES, COLORS[:3] + [(0, 0, 256)]),
        "colour 3: expected an [r, g, b] colour",
    ),
]


@pytest.mark.parametrize("call, text", [r[1:] for r in BAD], ids=[r[0] for r in BAD])
def test_bad_inputs(call, text):
    with pytest.raises(ValueError) as caught:
        call(segments.SegmentClasses(NAMES))
    assert text in str(caught.value)
