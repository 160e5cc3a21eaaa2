"""Bad inputs of the converters (tools/convert_to_ytvis.py), one row each.

``ROWS``: (what is wrong, how the input is built and changed, text the error must contain). Each
case runs the command line; it must end with exit status 2 and one ``error:`` line naming the
file, the video and the frame, with nothing written.
"""

import os

import numpy as np
import pytest
from PIL import Image

from tests.data.convert.helpers import (
    HEIGHT,
    WIDTH,
    coco_rle,
    write_cvat,
    write_davis,
    write_mots,
)
from tests.tools.scripts import load_tool

convert = load_tool("convert_to_ytvis")


def _davis(tmp_path, change=None, classes=None):
    root = str(tmp_path / "davis")
    write_davis(root)
    if change:
        change(root)
    argv = ["png-masks", "--frames", f"{root}/JPEGImages", "--masks", f"{root}/Annotations"]
    return argv + (["--classes", classes(tmp_path)] if classes else ["--class", "animal"])


def _resize_mask(root):
    path = f"{root}/Annotations/cows/00002.png"
    Image.open(path).resize((WIDTH + 2, HEIGHT)).save(path)


def _rgb_mask(root):
    path = f"{root}/Annotations/bear/00001.png"
    Image.open(path).convert("RGB").save(path)


def _classes_without(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text("video,object_id,category\nbear,1,bear\ncows,3,cow\n")  # bear's object 2?
    return str(path)


def _bad_header(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text("video;object;class\n")
    return str(path)


def _cvat(tmp_path, edit=None, frames_kept=None):
    xml, frames, _ = write_cvat(str(tmp_path))
    if edit:
        with open(xml) as f:
            text = edit(f.read())
        with open(xml, "w") as f:
            f.write(text)
    if frames_kept is not None:
        for name in sorted(os.listdir(f"{frames}/street"))[frames_kept:]:
            os.remove(f"{frames}/street/{name}")
    return ["cvat", "--xml", xml, "--frames", frames]


def _track_all_outside(text):
    head, rest = text.split('<track id="0"', 1)
    track, tail = rest.split("</track>", 1)
    return head + '<track id="0"' + track.replace('outside="0"', 'outside="1"') + "</track>" + tail


def _mots(tmp_path, edit_lines=None, frames_kept=None):
    txt_dir, frames, _ = write_mots(str(tmp_path))
    path = os.path.join(txt_dir, "0002.txt")
    if edit_lines:
        with open(path) as f:
            lines = f.read().splitlines()
        with open(path, "w") as f:
            f.write("\n".join(edit_lines(lines)) + "\n")
    if frames_kept is not None:
        for name in sorted(os.listdir(f"{frames}/0002"))[frames_kept:]:
            os.remove(f"{frames}/0002/{name}")
    return ["mots", "--txt", txt_dir, "--frames", frames]


def _overlap(lines):
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[:, :] = True  # covers every object of frame 0
    return lines + [f"0 2005 2 {HEIGHT} {WIDTH} {coco_rle(mask)}"]


def _other_size(lines):
    mask = np.ones((HEIGHT, WIDTH + 4), dtype=bool)
    return [f"0 1001 1 {HEIGHT} {WIDTH + 4} {coco_rle(mask)}"] + lines[1:]


def _replace_field(index, value):
    def edit(lines):
        fields = lines[0].split()
        fields[index] = value
        return [" ".join(fields)] + lines[1:]

    return edit


ROWS = [
    (
        "mask of another size than its frame",
        lambda p: _davis(p, _resize_mask),
        [
            "mask ",
            "cows/00002.png is 34x24",
            "but its frame ",
            "JPEGImages/cows/00002.png is 32x24",
            "video 'cows', frame 2",
            "must have the size of their frame",
        ],
    ),
    (
        "annotated frame without a frame file",
        lambda p: _davis(p, lambda r: os.remove(f"{r}/JPEGImages/cows/00001.png")),
        ["Annotations/cows/00001.png (video 'cows', frame 00001) has no frame"],
    ),
    (
        "object id without a class in the mapping",
        lambda p: _davis(p, classes=_classes_without),
        [
            "object id 2 of video 'bear' (first in frame 0",
            "Annotations/bear/00000.png",
            "has no class in",
            "classes.csv",
        ],
    ),
    (
        "colour (RGB) mask",
        lambda p: _davis(p, _rgb_mask),
        ["bear/00001.png has pixels of mode RGB", "expected a palette or grey PNG"],
    ),
    (
        "class mapping with a wrong header",
        lambda p: _davis(p, classes=_bad_header),
        ["classes.csv: the header is ['video;object;class']", "video,object_id,category"],
    ),
    (
        "CVAT track whose object is outside in every frame",
        lambda p: _cvat(p, _track_all_outside),
        ["street.xml: track 0 (label 'car', video 'street')", "a track without frames"],
    ),
    (
        "CVAT track without shapes",
        lambda p: _cvat(
            p,
            lambda t: t.replace(
                '<track id="2" label="car" source="manual">',
                '<track id="3" label="car"></track><track id="2">',
            ),
        ),
        [
            "street.xml: track 3 (label 'car', video 'street') has no shape",
            "a track without frames",
        ],
    ),
    (
        "CVAT frame missing from the frames folder",
        lambda p: _cvat(p, frames_kept=2),
        [
            "street.xml: track 0 (label 'car', video 'street', frame 2)",
            "frames folder has only 2 frames",
            "frames missing for an annotated frame",
        ],
    ),
    (
        "CVAT mask whose runs do not fill its box",
        lambda p: _cvat(p, lambda t: t.replace('rle="', 'rle="3, ', 1)),
        ["street.xml: track 1 (label 'person', video 'street', frame 0)", "rle run lengths sum"],
    ),
    (
        "CVAT mask box leaving the frame",
        lambda p: _cvat(p, lambda t: t.replace(' left="', ' left="3', 1)),
        ["track 1 (label 'person', video 'street', frame 0)", "leaves the 32x24 frame"],
    ),
    (
        "CVAT original_size other than the frames'",
        lambda p: _cvat(p, lambda t: t.replace(f"<width>{WIDTH}</width>", "<width>64</width>")),
        ["street.xml's original_size is 64x24", "street/000000.png is 32x24", "video 'street'"],
    ),
    (
        "CVAT for images export",
        lambda p: _cvat(p, lambda t: t.replace("</annotations>", '<image id="0"/></annotations>')),
        ["street.xml is a CVAT 'for images' export", "CVAT for video 1.1"],
    ),
    (
        "MOTS masks overlapping in a frame",
        lambda p: _mots(p, _overlap),
        [
            "0002.txt, line 9 (video '0002', frame 0)",
            "overlaps object 1001 (line 1)",
            "must not overlap",
        ],
    ),
    (
        "MOTS mask of another size than its frame",
        lambda p: _mots(p, _other_size),
        [
            "0002.txt, line 1: the mask is 36x24 (WxH), but its frame",
            "000000.png is 32x24",
            "video '0002', frame 0",
        ],
    ),
    (
        "MOTS frame without an image",
        lambda p: _mots(p, frames_kept=2),
        ["0002.txt, line 6 (video '0002', frame 2)", "frames missing for an annotated frame"],
    ),
    (
        "MOTS class id other than object id // 1000",
        lambda p: _mots(p, _replace_field(2, "2")),
        ["0002.txt, line 1 (video '0002'): class id 2 is not object id 1001 // 1000"],
    ),
    (
        "MOTS RLE of the wrong size",
        lambda p: _mots(p, _replace_field(5, coco_rle(np.ones((4, 4), dtype=bool)))),
        ["0002.txt, line 1 (video '0002'): the RLE covers 16 pixels", "24 x 32 = 768"],
    ),
    (
        "MOTS line with a missing field",
        lambda p: _mots(p, lambda lines: [" ".join(lines[0].split()[:5])] + lines[1:]),
        ["0002.txt, line 1 (video '0002'): 5 fields, expected 6"],
    ),
]


@pytest.mark.parametrize("what, build, expected", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(tmp_path, capsys, what, build, expected):
    out = tmp_path / "out"
    assert convert.main(build(tmp_path) + ["--out", str(out)]) == 2, what
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, (text, err)
    assert not os.path.exists(out / "annotations.json") and not os.path.exists(out / "JPEGImages")
