"""Fixtures of the detectron2 tests: a tiny synthetic YouTube-VIS dataset on disk."""

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A datasets root with ``ytvis_synthetic/`` (4 train, 2 val videos of 3 frames, 64 x 80)."""
    from video_mask2former.data.synthetic import write_synthetic_ytvis

    root = tmp_path_factory.mktemp("datasets")
    write_synthetic_ytvis(
        str(root / "ytvis_synthetic"),
        num_train_videos=4,
        num_val_videos=2,
        num_frames=3,
        height=64,
        width=80,
        seed=0,
    )
    return root
