"""Shared by tests/d2/test_video_seg_*.py: a tiny video panoptic / semantic dataset on disk."""

import os
import uuid

# 2 train and 2 val videos of 3 frames, 32 x 40, 6 classes (3 stuff, 3 things).
TINY = dict(num_train_videos=2, num_val_videos=2, num_frames=3, height=32, width=40)


def write_tiny_video_seg(root) -> dict:
    """Write both layouts under ``root`` and register their splits under fresh names.

    Returns:
        dict: ``root``, and ``vps_train`` / ``vps_val`` / ``vss_train`` / ``vss_val`` names.
    """
    from video_mask2former.d2 import register_vps_video, register_vss_video
    from video_mask2former.data.builtin_meta import metadata_for
    from video_mask2former.data.synthetic_video_seg import write_synthetic_vps, write_synthetic_vss

    vps = write_synthetic_vps(os.path.join(root, "vps_synthetic"), **TINY)
    vss = write_synthetic_vss(os.path.join(root, "vss_synthetic"), **TINY)
    tag = uuid.uuid4().hex[:8]
    names = {"root": str(root)}
    for split in ("train", "val"):
        json_file, image_root, gt_root = vps[split]
        names[f"vps_{split}"] = name = f"tiny_vps_{split}_{tag}"
        register_vps_video(
            name, json_file, image_root, gt_root, metadata_for(f"vps_synthetic_{split}")
        )
        dataset_root, split_file = vss[split]
        names[f"vss_{split}"] = name = f"tiny_vss_{split}_{tag}"
        register_vss_video(name, dataset_root, split_file, metadata_for(f"vss_synthetic_{split}"))
    return names
