"""tools/visualize_data.py: ground truth drawn in the demo's track colours (annotation source;
the data-loader source is in tests/d2/test_custom_dataset.py)."""

import numpy as np
from PIL import Image

from tests.data.own_data import tracks_dataset, write_dataset
from tests.tools.scripts import load_tool
from video_mask2former.visualization import track_color


def test_annotation_source_draws_tracks_in_demo_colours(tmp_path, capsys):
    tool = load_tool("visualize_data")
    json_file, image_root = write_dataset(tmp_path, tracks_dataset())
    out = tmp_path / "vis"
    argv = ["--source", "annotation", "--json", json_file, "--image-root", image_root,
            "--output", str(out)]  # fmt: skip
    assert tool.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["v1", "v2"]
    frame3 = np.asarray(Image.open(out / "v1" / "00003.png"))  # track 10 (slot 0) at [0:2, 0:2]
    grey = np.array([90, 90, 90], dtype=np.float64)
    blend = np.rint(0.5 * grey + 0.5 * np.asarray(track_color(0))).astype(np.uint8)
    interior_or_outline = (frame3[0, 0] == blend).all() or (frame3[0, 0] == track_color(0)).all()
    assert interior_or_outline
    assert (np.asarray(Image.open(out / "v2" / "00000.png")) == 90).all()  # nothing annotated
    assert tool.main(argv + ["--videos", "9"]) == 2
    assert "no video with id [9]" in capsys.readouterr().err
