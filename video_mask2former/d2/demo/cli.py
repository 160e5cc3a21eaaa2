"""The demo's command line (``demo_video/demo.py``): predict a video and draw / save its instances,
or its panoptic / semantic segmentation.

    python demo_video/demo.py \
        --config-file configs/youtubevis_2019/video_maskformer2_R50_bs16_8ep.yaml \
        --input path/to/frames/ --output out.mp4 --save-masks results.json \
        --opts MODEL.WEIGHTS model_final.pth MODEL.DEVICE cpu

``--input`` is a folder of frames (name order), a glob (quote it), image files, or one video file.
``--output`` is a folder (visualised frames) or a file ending in ``.mp4`` (a video at the input's
frame rate: H.264, which browsers play, when PyAV is installed, else OpenCV's mp4v; the log names
the codec; see ``video_mask2former.visualization.video_io``). ``--save-masks`` writes the kept
instances in the YouTube-VIS ``results.json`` format.
``--window-size W`` runs the windowed inference for long videos: frames are streamed from disk
and memory does not grow with the video's length.
``--online`` writes each frame as soon as it is known (``--input`` may then also be a camera index
or a stream URL; ``--save-masks`` writes JSON lines, one per frame; Ctrl-C, SIGTERM and SIGHUP
stop cleanly): see ``video_mask2former.demo.online``. ``--onnx-model`` runs the network from
an ONNX file in both modes.

A config with ``MODEL.MASK_FORMER.TEST.PANOPTIC_ON`` or ``SEMANTIC_ON`` (e.g.
``configs/vipseg/``, ``configs/vspw/``) draws video panoptic segmentation (thing segments in the
colour of their id, stable through the video, stuff in its class colour, void undrawn) or video
semantic segmentation (class colours), offline and ``--online`` alike; ``--save-masks DIR`` is
then a folder in the scorers' formats (``DIR/pan_pred/<video>/*.png`` + ``DIR/pred.json`` for
``tools/evaluate_vps.py``; ``DIR/<video>/*.png`` for ``tools/evaluate_vss.py``), ``<video>``
being ``--video-id`` or the input's name: see ``video_mask2former.demo.segmentation``.

``demo_video/demo.py`` only calls :func:`run`; the library code used here is the rest of
``video_mask2former.d2.demo`` (the predictor, the categories of a registered dataset),
``video_mask2former.demo`` (the online loop, categories files) and
``video_mask2former.visualization`` (drawing, writing frames).

Before any frame is predicted the demo checks its arguments (an output given twice, or equal to an
input, is refused), that the outputs can be written (missing folders are created), the categories
(``video_mask2former.demo.categories``: the config's dataset when it is registered here, else
``--categories FILE``; their number must be ``MODEL.SEM_SEG_HEAD.NUM_CLASSES``), the input, and
the weights or the ONNX file. Files are written under temporary names and renamed when complete:
the offline mode replaces ``--output`` / ``--save-masks`` only after the whole video was
predicted.

A video file that ends before the frame count its header announces (a truncated file) is an error
in both modes, naming the file and both counts (exit 1): the offline mode then writes nothing, the
online mode keeps the results of the frames it read (it writes them as it goes).

Exit status: 0 done (or, online, interrupted); 1 an input that cannot be used (a missing or broken
file, weights that do not fit, a truncated video, a stream that dropped); 2 arguments that cannot
be used together, or no known categories; 128 + the signal number when the offline mode is
interrupted (nothing is written then).
"""

import argparse
import contextlib
import logging
import os
import signal
import sys

from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from ...checkpoint import CheckpointMismatchError
from ...data.frames import FrameSource
from ...demo.categories import CategoriesError
from ...demo.online import live_inputs, run_online, segmentation_task_of
from ...demo.segmentation import (
    FrameMemory,
    SegmentationOutputs,
    check_video_id,
    default_video_id,
    run_segmentation,
)
from ...demo.wording import plural
from ...evaluation import video_predictions_to_results, write_results_json
from ...precision import PRECISIONS
from ...visualization import (
    FrameWriter,
    VideoVisualizer,
    check_frame_folder,
    check_writable,
)
from ..config import get_video_cfg
from ..registration import video_task
from .categories import resolve_categories
from .predictor import VideoPredictor

logger = logging.getLogger("video_mask2former.demo")

# Video id written to --save-masks when --video-id is not given and the input's name is not a
# number (the demo predicts a single video).
DEFAULT_VIDEO_ID = 1
# Exit status of arguments that cannot be used (as argparse's own).
EXIT_USAGE = 2
# Signals stopping the demo as Ctrl-C does (docker stop, a closed terminal).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class UsageError(ValueError):
    """Arguments that cannot be used together."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the demo is, as Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def stop_on_signals():
    """Inside the block SIGTERM and SIGHUP raise :class:`Interrupted`, once: the writers are then
    closed properly (the ``.mp4`` finalised); later signals are ignored while they close."""

    def interrupt(signum, frame):
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {number: signal.signal(number, interrupt) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
        metavar="PATH",
        help="video instances: write the kept instances to the file PATH in the YouTube-VIS "
        "results.json format (--online: JSON lines); a panoptic / semantic config: write the "
        "id maps into the folder PATH in the format tools/evaluate_vps.py / evaluate_vss.py read",
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=0.5,
        help="video instances scoring below are neither drawn nor saved (panoptic segments: "
        "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD)",
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
        "default 1) is processed, with track ids (panoptic: thing ids); --save-masks then writes "
        "JSON lines (instances) or its folder frame by frame",
    )
    parser.add_argument(
        "--allow-partial-weights",
        action="store_true",
        help="load whatever part of MODEL.WEIGHTS fits the model and only warn (experts; "
        "default: weights that do not fit the model exactly are an error)",
    )
    parser.add_argument(
        "--video-id",
        type=str,
        default=None,
        help="video_id written to --save-masks: instances: an integer (default: the input "
        "folder's or file's name when it is a number, e.g. a YouTube-VIS id, else "
        f"{DEFAULT_VIDEO_ID}); panoptic / semantic: the dataset's video name, which names its "
        "folder (default: the input folder's name, its parent's for a VSPW .../<video>/origin "
        "folder, or the video file's stem)",
    )
    parser.add_argument(
        "--onnx-model",
        type=str,
        default=None,
        help="run the network from this ONNX file (tools/export_model.py --format onnx, exported "
        "at the test resolution, with this config's NUM_CLASSES) in onnxruntime instead of "
        "PyTorch, offline or --online; MODEL.WEIGHTS is then unused",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="numerical precision of the network (MODEL.INFERENCE_PRECISION; default: the "
        "config's, 'auto': fp16 on CUDA with SOLVER.AMP.ENABLED, else fp32). bf16 on a CPU "
        "without bf16 arithmetic (AVX512-BF16 / AMX) warns and runs fp32",
    )
    parser.add_argument(
        "--categories",
        type=str,
        default=None,
        metavar="FILE",
        help="the categories the model predicts: a YouTube-VIS json (its 'categories') or a json "
        'list of {"id", "name"}; needed when the config\'s dataset is not registered in the demo '
        "(a custom dataset registered by a training script)",
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
    if args.precision is not None:
        cfg.MODEL.INFERENCE_PRECISION = args.precision
    cfg.freeze()
    return cfg


def _video_id(args) -> int:
    """Instances: --video-id (an integer), else the input's name when it is a number (a folder
    ``00042``, a file ``42.mp4``), else DEFAULT_VIDEO_ID."""
    if args.video_id is not None:
        try:
            return int(args.video_id)
        except ValueError:
            raise UsageError(
                f"--video-id {args.video_id!r}: the YouTube-VIS results.json of video instances "
                "needs an integer video id"
            ) from None
    inputs = args.input if isinstance(args.input, list) else [args.input]
    if len(inputs) == 1:
        stem = os.path.splitext(os.path.basename(os.path.normpath(inputs[0])))[0]
        if stem.isdigit():
            return int(stem)
    return DEFAULT_VIDEO_ID


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (symlinks and relative paths resolved)."""
    return os.path.realpath(a) == os.path.realpath(b)


def _segmentation_video_id(args) -> str:
    """Panoptic / semantic: --video-id, else the input's name (see --help), checked to name a
    folder."""
    if args.video_id is None:
        return check_video_id(default_video_id(args.input))
    try:
        return check_video_id(args.video_id)
    except ValueError as e:
        raise UsageError(f"--video-id: {e}") from None


def check_outputs(args, task: str = "instance") -> None:
    """Check the outputs before anything is read: at least one, no two the same, none the same
    as an input, each writable (missing folders are created). ``task`` ("instance",
    "panoptic" or "semantic") says whether ``--save-masks`` is a file or a folder.

    Raises:
        UsageError: outputs missing or clashing.
        OSError: naming an output that cannot be written.
    """
    outputs = [
        (name, path)
        for name, path in (("--output", args.output), ("--save-masks", args.save_masks))
        if path
    ]
    if not outputs:
        raise UsageError("nothing to do: give --output and/or --save-masks")
    if len(outputs) == 2 and _same_file(args.output, args.save_masks):
        raise UsageError(
            f"--output {args.output} and --save-masks {args.save_masks} are the same file: give "
            "two different paths"
        )
    for name, path in outputs:
        for item in args.input:
            if os.path.exists(item) and _same_file(path, item):
                raise UsageError(f"{name} {path} is the input {item}: it would be overwritten")
    if args.save_masks and task == "instance":
        check_writable(args.save_masks)
    elif args.save_masks:
        if os.path.exists(args.save_masks) and not os.path.isdir(args.save_masks):
            raise OSError(
                f"--save-masks {args.save_masks} is a file: a {task} model writes a folder of "
                "masks there"
            )
        check_frame_folder(args.save_masks)
    if args.output:
        if args.output.lower().endswith(".mp4"):
            check_writable(args.output)
        else:
            check_frame_folder(args.output)


def run_offline(args, cfg, categories) -> int:
    """Predict the whole video, then write the outputs (see the module docstring)."""
    source = FrameSource(args.input)
    logger.info(f"Input: {plural(len(source), 'frame')} of {source.width}x{source.height}")
    predictor = VideoPredictor(cfg, onnx_model=args.onnx_model)
    predictor.check_frame_size(source.size)
    if segmentation_task_of(predictor) is not None:
        return run_offline_segmentation(args, predictor, source, categories)
    with tqdm(total=len(source), desc="predict", unit="frame") as bar:  # frames predicted
        prediction = predictor(source, source.size, progress=bar.update)
    visualizer = VideoVisualizer(categories.names, args.confidence_threshold)
    kept = visualizer.select(prediction)
    count = plural(len(kept["pred_scores"]), "instance")
    logger.info(f"Kept {count} of score >= {args.confidence_threshold}")

    if args.output:
        with FrameWriter(args.output, source.frame_names(), source.fps) as writer:
            for frame in visualizer.iter_draw(
                source, kept, progress=lambda x: tqdm(x, total=len(source), desc="draw")
            ):
                writer.write(frame)
        logger.info(f"Wrote the visualisation to {args.output}")
    if args.save_masks:
        results = video_predictions_to_results(
            _video_id(args), kept, contiguous_to_dataset_id=categories.to_dataset_id()
        )
        write_results_json(results, args.save_masks)
        logger.info(f"Wrote {plural(len(results), 'instance')} to {args.save_masks}")
    return 0


def run_offline_segmentation(args, predictor, source, categories) -> int:
    """Segment the video and write each frame as its result comes (whole video: after the
    whole video; windowed: after each window). The outputs replace ``--output`` /
    ``--save-masks`` only when every frame was written; an error or an interrupt leaves them
    as they were."""
    kind = predictor.segmentation_task.kind
    video_id = _segmentation_video_id(args)
    outputs = SegmentationOutputs(
        args.output, args.save_masks, source.frame_names(), source.fps, kind, video_id, categories
    )
    frames = FrameMemory(source)
    try:
        with tqdm(total=len(source), desc=kind, unit="frame") as bar:
            count = run_segmentation(
                predictor.segment(frames, source.size, progress=bar.update), frames, outputs
            )
        outputs.close()
    except BaseException:
        outputs.discard()
        raise
    if args.output:
        logger.info(f"Wrote the {kind} visualisation of {plural(count, 'frame')} to {args.output}")
    if args.save_masks:
        logger.info(f"Wrote the {kind} masks of video {video_id!r} to {args.save_masks}")
    return 0


def main(argv=None) -> int:
    """Run the demo on ``argv`` (see the module docstring); returns the exit status.

    Raises:
        UsageError, CategoriesError: arguments that cannot be used (exit status 2).
        OSError, ValueError, CheckpointMismatchError: an input that cannot be used.
        Interrupted, KeyboardInterrupt: the offline mode was interrupted.
    """
    args = get_parser().parse_args(argv)
    # Colours only on a terminal (a log piped to a file or a CI log stays plain text).
    setup_logger(name="video_mask2former", color=sys.stdout.isatty())
    cfg = setup_cfg(args)
    task = video_task(cfg)
    if task == "instance":  # a bad --video-id is refused before anything is read
        _video_id(args)
    else:
        _segmentation_video_id(args)
    if not args.online and live_inputs(args.input):
        raise UsageError(
            f"--input {' '.join(live_inputs(args.input))}: a camera or a stream "
            f"URL is read with --online"
        )
    check_outputs(args, task)
    categories = resolve_categories(cfg, args.categories)
    with stop_on_signals():
        if args.online:
            video_id = _segmentation_video_id(args) if task != "instance" else None
            return run_online(args, cfg, _make_predictor(args), categories, video_id)
        return run_offline(args, cfg, categories)


def _make_predictor(args):
    return lambda cfg: VideoPredictor(cfg, onnx_model=args.onnx_model)


def run(argv=None) -> None:
    """The command line: :func:`main`, its errors as one line on stderr and an exit status
    (the module docstring lists them); never returns."""
    try:
        sys.exit(main(argv))
    except (UsageError, CategoriesError) as e:
        print(f"demo.py: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except (OSError, ValueError, CheckpointMismatchError) as e:  # FileNotFoundError, ...
        # Bad inputs (missing folder, checkpoint that is unreadable or does not fit the model,
        # unreadable frame): the message says what.
        sys.exit(f"demo.py: error: {e}")
    except KeyboardInterrupt as e:  # the offline mode: nothing was written
        signum = getattr(e, "signum", signal.SIGINT)
        name = getattr(e, "signal_name", "Ctrl-C")
        print(f"demo.py: interrupted ({name}): nothing was written", file=sys.stderr)
        sys.exit(128 + signum)
