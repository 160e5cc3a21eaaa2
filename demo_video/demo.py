#!/usr/bin/env python
"""Video instance segmentation demo: predict a video and draw / save its instances.

    python demo_video/demo.py \
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml \
        --input path/to/frames/ --output out.mp4 --save-masks results.json \
        --opts MODEL.WEIGHTS model_final.pth MODEL.DEVICE cpu

``--input`` is a folder of frames (name order), a glob (quote it), image files, or one video file.
``--output`` is a folder (visualised frames) or a file ending in ``.mp4`` (a video at the input's
frame rate). ``--save-masks`` writes the kept instances in the YouTube-VIS ``results.json`` format.
``--window-size W`` runs the windowed inference for long videos: frames are streamed from disk
and memory does not grow with the video's length.
``--online`` writes each frame as soon as it is known (``--input`` may then also be a camera index
or a stream URL; ``--save-masks`` writes JSON lines, one per frame; Ctrl-C stops cleanly): see
``online.py``.
"""

import argparse
import logging
import os
import sys

from tqdm import tqdm

# Run from a source checkout: the repository root (video_mask2former) and this folder.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]

from detectron2.utils.logger import setup_logger  # noqa: E402
from online import live_inputs, run_online  # noqa: E402
from predictor import VideoPredictor  # noqa: E402
from video_io import FrameWriter  # noqa: E402
from visualizer import VideoVisualizer  # noqa: E402

from video_mask2former.checkpoint import CheckpointMismatchError  # noqa: E402
from video_mask2former.d2.config import get_video_cfg  # noqa: E402
from video_mask2former.data.frames import FrameSource  # noqa: E402
from video_mask2former.evaluation import video_predictions_to_results, write_results_json  # noqa

logger = logging.getLogger("video_mask2former.demo")

# Video id written to --save-masks when --video-id is not given and the input's name is not a
# number (the demo predicts a single video).
DEFAULT_VIDEO_ID = 1


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Video Mask2Former demo")
    parser.add_argument(
        "--config-file",
        type=str,
        default="configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml",
        metavar="FILE",
        help="path to the config file",
    )
    parser.add_argument(
        "--input",
        type=str,
        nargs="+",
        required=True,
        help="a folder of frames, a glob such as 'dir/*.jpg', image files, or one video file; "
        "with --online also a camera index (0) or a stream URL (rtsp://, http://, file://)",
    )
    parser.add_argument(
        "--output",
        type=str,
        default=None,
        help="folder for the visualised frames, or a .mp4 file for a video",
    )
    parser.add_argument(
        "--save-masks",
        type=str,
        default=None,
        metavar="FILE",
        help="write the kept instances to FILE in the YouTube-VIS results.json format",
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=0.5,
        help="instances scoring below are neither drawn nor saved",
    )
    parser.add_argument(
        "--window-size",
        type=int,
        default=None,
        metavar="W",
        help="windowed inference over W frames at a time for long videos (0: the whole video "
        "at once; default: MODEL.MASK_FORMER.TEST.WINDOW_SIZE of the config)",
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="online inference: each frame is written as soon as its window (--window-size, "
        "default 1) is processed, with track ids; --save-masks then writes JSON lines",
    )
    parser.add_argument(
        "--allow-partial-weights",
        action="store_true",
        help="load whatever part of MODEL.WEIGHTS fits the model and only warn (experts; "
        "default: weights that do not fit the model exactly are an error)",
    )
    parser.add_argument(
        "--video-id",
        type=int,
        default=None,
        help="video_id written to --save-masks (default: the input folder's or file's name when "
        f"it is a number, e.g. a YouTube-VIS id, else {DEFAULT_VIDEO_ID})",
    )
    parser.add_argument(
        "--onnx-model",
        type=str,
        default=None,
        help="run the network from this ONNX file (tools/export_model.py --format onnx, exported "
        "at the test resolution) in onnxruntime instead of PyTorch; MODEL.WEIGHTS is then unused",
    )
    parser.add_argument(
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pth MODEL.DEVICE cpu",
    )
    return parser


def setup_cfg(args):
    cfg = get_video_cfg(args.config_file, args.opts)
    if args.window_size is not None:
        if args.window_size < 0:
            raise ValueError(f"--window-size must be >= 0, got {args.window_size}")
        cfg.MODEL.MASK_FORMER.TEST.WINDOW_SIZE = args.window_size
    if args.allow_partial_weights:
        cfg.MODEL.ALLOW_PARTIAL_WEIGHTS = True
    cfg.freeze()
    return cfg


def _class_names(predictor: VideoPredictor, num_classes: int):
    names = predictor.metadata.get("thing_classes", None) if predictor.metadata else None
    return names if names else [str(i) for i in range(num_classes)]


def _dataset_ids(predictor: VideoPredictor, num_classes: int):
    id_map = predictor.metadata.get("thing_dataset_id_to_contiguous_id", None)
    if id_map:
        return {contiguous: dataset_id for dataset_id, contiguous in id_map.items()}
    return {i: i + 1 for i in range(num_classes)}  # YouTube-VIS style: ids start at 1


def _video_id(args) -> int:
    """--video-id, else the input's name when it is a number (a folder ``00042``, a file
    ``42.mp4``), else DEFAULT_VIDEO_ID."""
    if args.video_id is not None:
        return args.video_id
    inputs = args.input if isinstance(args.input, list) else [args.input]
    if len(inputs) == 1:
        stem = os.path.splitext(os.path.basename(os.path.normpath(inputs[0])))[0]
        if stem.isdigit():
            return int(stem)
    return DEFAULT_VIDEO_ID


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logger(name="video_mask2former")
    cfg = setup_cfg(args)
    if args.output is None and args.save_masks is None:
        raise SystemExit("Nothing to do: give --output and/or --save-masks.")
    if args.online:
        return run_online(args, cfg, VideoPredictor, _class_names, _dataset_ids)
    if live_inputs(args.input):
        raise ValueError(
            f"--input {' '.join(live_inputs(args.input))}: a camera or a stream "
            f"URL is read with --online"
        )

    source = FrameSource(args.input)
    logger.info(f"Input: {len(source)} frames of {source.width}x{source.height}")
    predictor = VideoPredictor(cfg, onnx_model=args.onnx_model)
    with tqdm(total=len(source), desc="predict", unit="frame") as bar:  # frames predicted
        prediction = predictor(source, source.size, progress=bar.update)
    num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
    visualizer = VideoVisualizer(_class_names(predictor, num_classes), args.confidence_threshold)
    kept = visualizer.select(prediction)
    logger.info(f"{len(kept['pred_scores'])} instances score >= {args.confidence_threshold}")

    if args.save_masks:
        results = video_predictions_to_results(
            _video_id(args), kept, contiguous_to_dataset_id=_dataset_ids(predictor, num_classes)
        )
        write_results_json(results, args.save_masks)
        logger.info(f"Wrote {len(results)} instances to {args.save_masks}")
    if args.output:
        with FrameWriter(args.output, source.frame_names(), source.fps) as writer:
            for frame in visualizer.iter_draw(
                source, kept, progress=lambda x: tqdm(x, total=len(source), desc="draw")
            ):
                writer.write(frame)
        logger.info(f"Wrote the visualisation to {args.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, CheckpointMismatchError) as e:  # FileNotFoundError, ...
        # Bad inputs (missing folder, checkpoint that is unreadable or does not fit the model,
        # unreadable frame): the message says what.
        sys.exit(f"demo.py: error: {e}")
