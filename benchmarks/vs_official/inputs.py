"""The synthetic inputs of the benchmark against the official code: the same for both
implementations (seeded, made in each child process)."""

import argparse

from benchmarks.common import random_frames

# YouTube-VIS 2019 classes (MODEL.SEM_SEG_HEAD.NUM_CLASSES of the official configs).
NUM_CLASSES = 40
# Side of a synthetic instance's box, as a fraction of the frame side: [min, max).
BOX_FRACTION = (0.125, 0.5)


def random_instances(num: int, frames: int, height: int, width: int, generator):
    """``num`` instances present in every frame, each a random box per frame.

    Returns:
        tuple: classes (M,) int64 in [0, NUM_CLASSES), masks (M, T, H, W) bool.
    """
    import torch

    classes = torch.randint(0, NUM_CLASSES, (num,), generator=generator)
    masks = torch.zeros((num, frames, height, width), dtype=torch.bool)
    for m in range(num):
        for t in range(frames):
            box = []
            for side in (height, width):
                lo, hi = (max(1, int(side * f)) for f in BOX_FRACTION)
                size = int(torch.randint(lo, hi + 1, (), generator=generator))
                box.append((int(torch.randint(0, side - size + 1, (), generator=generator)), size))
            (y, h), (x, w) = box
            masks[m, t, y : y + h, x : x + w] = True
    return classes, masks


def frame_targets(impl: str, classes, masks) -> list:
    """Per-frame targets as each implementation reads them.

    Ours: :class:`~video_mask2former.structures.FrameInstances`. The official (its
    ``prepare_targets``): detectron2 ``Instances`` with ``gt_classes``, ``gt_ids`` and
    ``gt_masks`` as ``BitMasks``, the fields its YTVIS dataset mapper fills.

    Args:
        classes (Tensor): (M,) int64.
        masks (Tensor): (M, T, H, W) bool.
    """
    import torch

    ids = torch.arange(len(classes))
    size = tuple(masks.shape[-2:])
    if impl == "ours":
        from video_mask2former.structures import FrameInstances

        return [
            FrameInstances(image_size=size, gt_classes=classes, gt_ids=ids, gt_masks=masks[:, t])
            for t in range(masks.shape[1])
        ]
    from detectron2.structures import BitMasks, Instances

    return [
        Instances(size, gt_classes=classes, gt_ids=ids, gt_masks=BitMasks(masks[:, t]))
        for t in range(masks.shape[1])
    ]


def inference_video(args: argparse.Namespace) -> dict:
    """One video of ``--frames`` random uint8 frames, as the public inference path takes it."""
    import torch

    generator = torch.Generator().manual_seed(args.seed)
    frames = random_frames(args.frames, args.height, args.width, generator)
    return {"image": frames, "height": args.height, "width": args.width}


def training_batch(args: argparse.Namespace) -> list:
    """``--train-videos`` videos of ``--train-frames`` frames with ``--instances`` instances."""
    import torch

    generator = torch.Generator().manual_seed(args.seed)
    batch = []
    for _ in range(args.train_videos):
        frames = random_frames(args.train_frames, args.height, args.width, generator)
        classes, masks = random_instances(
            args.instances, args.train_frames, args.height, args.width, generator
        )
        video = {"image": frames, "height": args.height, "width": args.width}
        video["instances"] = frame_targets(args.impl, classes, masks)
        batch.append(video)
    return batch
