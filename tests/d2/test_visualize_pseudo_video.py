"""tools/visualize_data.py --source dataloader on a joint-training config: the pseudo-video clips
made from images are drawn (PNG frames, and an .mp4 although their frames differ in size)."""

import os
import uuid

import numpy as np
import pytest
from PIL import Image

from tests.conftest import requires_detectron2

pytestmark = requires_detectron2

NUM_CLIPS = 3


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    """A registered image set (4 synthetic COCO-format images, 64 x 80, the synthetic shapes)."""
    from video_mask2former.d2.joint import register_image_pseudo_video
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.data.synthetic_images import write_synthetic_coco

    root = tmp_path_factory.mktemp("coco")
    image_root, json_file = write_synthetic_coco(str(root), num_images=4, height=64, width=80)
    name = f"test_pseudo_images_{uuid.uuid4().hex[:8]}"
    register_image_pseudo_video(name, json_file, image_root, None, metadata_for("ytvis_synthetic"))
    return name


def _visualize(name, out, *extra):
    from tests.d2.helpers import CONFIG_DIR
    from tests.tools.scripts import load_tool

    config = os.path.join(
        CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_synthetic_joint_smoke.yaml"
    )
    argv = ["--source", "dataloader", "--config-file", config, "--output", str(out),
            "--num-clips", str(NUM_CLIPS), *extra, "DATASETS.TRAIN", f"('{name}',)",
            "DATASETS.DATASET_RATIO", "[]"]  # fmt: skip
    return load_tool("visualize_data").main(argv)


def test_pseudo_video_clips_drawn_as_png_frames(tmp_path, image_set):
    from video_mask2former.visualization import track_color

    assert _visualize(image_set, tmp_path / "png") == 0
    clips = sorted((tmp_path / "png").iterdir())
    assert len(clips) == NUM_CLIPS
    assert all(c.name.startswith(f"clip_{k:03d}_image_") for k, c in enumerate(clips))
    sizes, coloured = set(), 0
    for clip in clips:
        assert sorted(p.name for p in clip.iterdir()) == ["00_pseudo.png", "01_pseudo.png"]
        for png in clip.iterdir():
            frame = np.asarray(Image.open(png))
            sizes.add(frame.shape)
            coloured += (frame == np.asarray(track_color(0), dtype=np.uint8)).all(-1).any()
    assert len(sizes) > 1  # the crop and resize of each frame: the frames differ in size
    assert coloured > 0  # the first track's outline is drawn


def test_pseudo_video_clips_drawn_as_mp4(tmp_path, image_set):
    """Each frame of a pseudo-video has its own size; the .mp4 (one size) pads them."""
    import cv2

    assert _visualize(image_set, tmp_path, "--mp4") == 0
    videos = sorted(tmp_path.iterdir())
    assert len(videos) == NUM_CLIPS
    for k, video in enumerate(videos):
        assert video.name.startswith(f"clip_{k:03d}_image_") and video.suffix == ".mp4"
        capture = cv2.VideoCapture(str(video))
        count = 0
        while capture.read()[0]:
            count += 1
        capture.release()
        assert count == 2  # INPUT.SAMPLING_FRAME_NUM


def test_own_dataset_given_by_dataset_option_drawn_through_the_loader(tmp_path, capsys):
    """--dataset NAME JSON IMAGE_ROOT registers a user's YouTube-VIS file for the run (as
    train_net_video.py does), so its training clips can be drawn without code; a taken name is
    refused with the option named."""
    from video_mask2former.data.synthetic import write_synthetic_ytvis

    from tests.d2.helpers import CONFIG_DIR
    from tests.tools.scripts import load_tool

    image_root, json_file = write_synthetic_ytvis(
        str(tmp_path / "own"),
        num_train_videos=2,
        num_val_videos=1,
        num_frames=4,
        height=48,
        width=64,
    )["train"]
    name = f"own_{uuid.uuid4().hex[:8]}"
    config = os.path.join(
        CONFIG_DIR, "quick_schedules", "video_maskformer2_R18_synthetic_smoke.yaml"
    )
    argv = ["--source", "dataloader", "--config-file", config, "--output", str(tmp_path / "out"),
            "--num-clips", "2", "--dataset", name, str(json_file), str(image_root),
            "DATASETS.TRAIN", f"('{name}',)"]  # fmt: skip
    assert load_tool("visualize_data").main(argv) == 0
    clips = sorted((tmp_path / "out").iterdir())
    assert len(clips) == 2 and all(len(list(c.iterdir())) == 2 for c in clips)  # 2 frames each

    assert load_tool("visualize_data").main(argv) != 0  # one error line, no traceback
    assert f"--dataset {name}: a dataset of that name is already registered" in (
        capsys.readouterr().err
    )
