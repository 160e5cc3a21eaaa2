#!/usr/bin/env python
"""Draw a dataset's ground truth, or the training clips as the data loader produces them.

    # the annotations of a YouTube-VIS-format file, on its frames (no detectron2 needed)
    python tools/visualize_data.py --source annotation --json JSON --image-root DIR \\
        --output OUT [--videos ID ...] [--mp4]
    # the training clips of a config, after sampling and augmentation (detectron2's loader,
    # pseudo-videos from images included for joint-training configs: clip_<k>_image_<id>)
    python tools/visualize_data.py --source dataloader --config-file CFG --output OUT \\
        [--num-clips N] [--mp4] [KEY VALUE ...]

Each video (clip) goes to ``OUT/<video>/`` as PNG frames, or to ``OUT/<video>.mp4`` with
``--mp4``; every track keeps one colour through its video, the demo's colour of its index
(``video_mask2former/visualization/ground_truth.py``), labelled ``<category> #<id>``. A
pseudo-video's frames (one image under a crop and resize per frame) differ in size: in an
``.mp4`` they are padded with black below and to the right to the largest of them, as the model's
batch padding does. The output folder is checked before anything is read; a bad input ends with
one ``error:`` line, exit 2.
"""

import argparse
import itertools
import os
import sys

from video_mask2former.data.frames import CorruptFrameError
from video_mask2former.data.ytvis import (
    YTVISFormatError,
    add_dataset_argument,
    load_ytvis_dataset,
)
from video_mask2former.visualization import FrameWriter, check_frame_folder
from video_mask2former.visualization.ground_truth import draw_clip, draw_record, pad_frames

# Frame rate of the .mp4 outputs.
MP4_FPS = 5.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("annotation", "dataloader"), required=True)
    parser.add_argument("--json", type=str, help="annotation file (--source annotation)")
    parser.add_argument("--image-root", type=str, help="frames folder (--source annotation)")
    parser.add_argument(
        "--videos", type=int, nargs="*", default=None, help="video ids to draw (default: all)"
    )
    parser.add_argument("--config-file", type=str, help="config (--source dataloader)")
    add_dataset_argument(parser, note=" (--source dataloader)")
    parser.add_argument(
        "--num-clips", type=int, default=4, help="clips to draw (--source dataloader)"
    )
    parser.add_argument("--output", type=str, required=True, help="output folder")
    parser.add_argument("--mp4", action="store_true", help="one .mp4 per video, not PNGs")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs")
    args = parser.parse_args(argv)
    needed = ("json", "image_root") if args.source == "annotation" else ("config_file",)
    missing = [f"--{k.replace('_', '-')}" for k in needed if getattr(args, k) is None]
    if missing:
        parser.error(f"--source {args.source} needs {' and '.join(missing)}")
    if args.num_clips < 1:
        parser.error(f"--num-clips must be at least 1, got {args.num_clips}")
    return args


def _write(frames, output: str, name: str, mp4: bool, frame_names) -> str:
    """Write one video's drawn frames; returns where."""
    target = os.path.join(output, f"{name}.mp4" if mp4 else name)
    with FrameWriter(target, frame_names, MP4_FPS) as writer:
        for frame in frames:
            writer.write(frame)
    return target


def _video_name(record: dict, image_root: str) -> str:
    """The folder of the video's frames relative to the image root, else ``video_<id>``."""
    folder = os.path.relpath(os.path.dirname(record["file_names"][0]), image_root)
    if folder in (".", "") or folder.startswith(".."):
        return f"video_{record['video_id']}"
    return folder.replace(os.sep, "_")


def _annotations(args: argparse.Namespace) -> list:
    records, meta = load_ytvis_dataset(args.json, args.image_root)
    if args.videos is not None:
        known = {r["video_id"] for r in records}
        unknown = sorted(set(args.videos) - known)
        if unknown:
            raise YTVISFormatError(f"{args.json}: no video with id {unknown}.")
        records = [r for r in records if r["video_id"] in set(args.videos)]
    written = []
    for record in records:
        names = [f"{os.path.splitext(os.path.basename(f))[0]}.png" for f in record["file_names"]]
        frames = draw_record(record, meta["thing_classes"])
        written.append(_write(frames, args.output, _video_name(record, args.image_root),
                              args.mp4, names))  # fmt: skip
    return written


def _dataloader(args: argparse.Namespace) -> list:
    """The first ``--num-clips`` clips of the training loader that train_net_video.py builds."""
    from detectron2.data import MetadataCatalog, build_detection_train_loader

    import video_mask2former.d2  # noqa: F401 (registers the built-in datasets)
    from video_mask2former.d2.config import get_video_cfg
    from video_mask2former.d2.datasets import (
        get_video_dataset_dicts,
        prepare_synthetic_datasets,
        register_user_datasets,
    )
    from video_mask2former.d2.joint import build_joint_train_loader, uses_joint_loader
    from video_mask2former.d2.mapper import build_video_mapper

    register_user_datasets(args.dataset)
    cfg = get_video_cfg(args.config_file, args.opts)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.SOLVER.IMS_PER_BATCH = 1
    prepare_synthetic_datasets(list(cfg.DATASETS.TRAIN))
    # as train_net_video.Trainer.build_train_loader
    if uses_joint_loader(cfg):
        loader = build_joint_train_loader(cfg)
    else:
        mapper = build_video_mapper(cfg, cfg.DATASETS.TRAIN, is_train=True)
        dataset = get_video_dataset_dicts(
            cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        )
        loader = build_detection_train_loader(cfg, mapper=mapper, dataset=dataset)
    class_names = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).get("thing_classes", [])
    written = []
    clips = (clip for batch in loader for clip in batch)
    for k, clip in enumerate(itertools.islice(clips, args.num_clips)):
        frames = draw_clip(clip, class_names, cfg.INPUT.FORMAT)
        if args.mp4:  # a pseudo-video's frames differ in size; a video file needs one size
            frames = pad_frames(frames)
        name, frame_names = _clip_names(clip, k)
        written.append(_write(frames, args.output, name, args.mp4, frame_names))
    return written


def _is_pseudo_video(clip: dict) -> bool:
    """Whether a mapped clip was made from one image (joint training): the pseudo-video mapper
    repeats the image's file name and numbers the frames 0..T-1."""
    files, idx = clip.get("file_names", []), clip.get("frame_idx", [])
    return len(files) > 1 and len(set(files)) == 1 and list(idx) == list(range(len(files)))


def _clip_names(clip: dict, k: int) -> tuple:
    """(output name, PNG names) of the k-th clip: ``clip_<k>_video_<id>`` with frames
    ``<t>_frame<index in the video>.png``, or ``clip_<k>_image_<id>`` with frames
    ``<t>_pseudo.png`` for a pseudo-video."""
    if _is_pseudo_video(clip):
        names = [f"{t:02d}_pseudo.png" for t in range(len(clip["image"]))]
        return f"clip_{k:03d}_image_{clip.get('video_id')}", names
    names = [f"{t:02d}_frame{i:05d}.png" for t, i in enumerate(clip.get("frame_idx", []))]
    return f"clip_{k:03d}_video_{clip.get('video_id')}", names or None


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_frame_folder(args.output)
        written = _annotations(args) if args.source == "annotation" else _dataloader(args)
    except (YTVISFormatError, CorruptFrameError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {len(written)} {'videos' if args.mp4 else 'frame folders'} under {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
