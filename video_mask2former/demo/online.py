"""The demo's ``--online`` mode: results written frame by frame as soon as they are known.

The input is read one frame at a time (:func:`video_mask2former.data.live.open_stream_input`: a
camera index, a stream URL, a video file, or frames in a folder) and pushed into the model's
stream (:meth:`VideoPredictor.stream`, W = ``--window-size``, default 1: per frame). Each frame's
result is drawn and written to ``--output`` (a folder or an ``.mp4``) and, with ``--save-masks``,
appended to a JSON-lines file (one line per frame, flushed at once)::

    {"frame": 0, "instances": [{"track_id": 3, "category_id": 1, "score": 0.93,
                                "segmentation": {"size": [H, W], "counts": "..."}}, ...]}

A model with a segmentation task (panoptic / semantic) streams id maps instead
(:class:`~video_mask2former.inference.segment_windows.SegmentationStream`: thing ids stable
across windows): each frame is drawn as :mod:`.segmentation` draws it, and ``--save-masks DIR``
writes the scorers' formats there (see :mod:`.segmentation`).

Everything is checked before the first frame is read (the arguments, the outputs' folders, the
input, the weights or the ONNX file, the categories); the files are written under temporary names
beside ``--output`` / ``--save-masks`` and renamed over them when the run ends (see
:mod:`video_mask2former.visualization.video_io`): a run that fails before its first frame leaves
the previous outputs as they were.

The run ends at the end of the stream (the partial last window is run), on Ctrl-C, SIGTERM or
SIGHUP (the frames waiting for their window are dropped) or on an error; in every case the
frames written so far are kept under the final names and the files are closed properly (the
``.mp4`` is finalised). Exit status: 0 at the end of the stream or on an interrupt; 1 when the
stream dropped before its announced end (a truncated file, a lost connection: the message names
the input and both frame counts) or on an error, with a message saying what happened.
"""

import contextlib
import logging
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence


from tqdm import tqdm

from ..data.live import LiveSource, is_camera_or_url, open_stream_input
from ..evaluation.results import encode_mask_frames
from ..inference.streaming import FrameResult, StreamPolicy
from ..structures import RLEVideoMask
from ..visualization.draw import draw_frame_result
from ..visualization.video_io import FrameWriter, JsonLinesWriter
from .categories import Categories
from .segmentation import FrameMemory, SegmentationOutputs, default_video_id
from .wording import plural

logger = logging.getLogger("video_mask2former.demo")

# Exit status of a run whose input stream dropped before its announced end.
EXIT_STREAM_DROPPED = 1


def frame_result_to_json(result: FrameResult, to_dataset_id: Dict[int, int]) -> dict:
    """One JSON-lines record: the frame index and its instances (dataset category ids)."""
    segmentations = encode_mask_frames(RLEVideoMask([i.rle for i in result.instances]))
    return {
        "frame": result.frame_index,
        "instances": [
            {
                "track_id": instance.track_id,
                "category_id": int(to_dataset_id[instance.label]),
                "score": instance.score,
                "segmentation": segmentation,
            }
            for instance, segmentation in zip(result.instances, segmentations)
        ],
    }


class _Outputs:
    """The writers of an online instance run, opened before any frame is read."""

    def __init__(
        self,
        output: Optional[str],
        save_masks: Optional[str],
        names: Optional[Sequence[str]],
        fps: float,
        categories: Categories,
    ):
        self.class_names = categories.names
        self.to_dataset_id = categories.to_dataset_id()
        self.frames: Optional[FrameWriter] = None
        self.masks: Optional[JsonLinesWriter] = None
        try:
            self.masks = JsonLinesWriter(save_masks) if save_masks else None
            self.frames = FrameWriter(output, names, fps) if output else None
        except BaseException:
            self.close()
            raise

    def write(self, frame, result: FrameResult) -> None:
        if self.frames is not None:
            self.frames.write(draw_frame_result(frame, result, self.class_names))
        if self.masks is not None:
            self.masks.write(frame_result_to_json(result, self.to_dataset_id))

    def close(self, allow_empty: bool = True) -> None:
        """Close every writer; a writer that got no frame is not an error here."""
        if self.masks is not None:
            self.masks.close()
        if self.frames is not None:
            self.frames.close(allow_empty=allow_empty)


def segmentation_task_of(predictor):
    """The predictor's ``segmentation_task``; a predictor without one predicts instances."""
    return getattr(predictor, "segmentation_task", None)


def _open_outputs(args, predictor, names, fps, categories, video_id):
    """The writers of the run: instances, or the maps of a segmentation task."""
    task = segmentation_task_of(predictor)
    if task is None:
        return _Outputs(args.output, args.save_masks, names, fps, categories)
    return SegmentationOutputs(
        args.output,
        args.save_masks,
        names,
        fps,
        task.kind,
        video_id if video_id is not None else default_video_id(args.input),
        categories,
    )


def _each_step_within(context: Callable, iterator: Iterable) -> Iterator:
    """The items of ``iterator``, each computed inside a fresh ``context()`` (the predictor's
    precision), which is left before the item is handed on (so writing runs outside it)."""
    iterator = iter(iterator)
    while True:
        with context():
            item = next(iterator, _END)
        if item is _END:
            return
        yield item


_END = object()


def _results(predictor, source, cfg, args):
    """The stream of the run and its (frame, result) pairs, computed in the predictor's
    ``precision_context`` (the config's ``MODEL.INFERENCE_PRECISION``)."""
    window_size = max(1, cfg.MODEL.MASK_FORMER.TEST.WINDOW_SIZE)
    context = getattr(predictor, "precision_context", contextlib.nullcontext)
    if segmentation_task_of(predictor) is not None:
        stream = predictor.stream(window_size, policy=None)
        frames = FrameMemory(source)
        results = _each_step_within(context, stream.run(frames))
        return stream, ((frames.take(r.index), r) for r in results)
    policy = StreamPolicy(
        topk=cfg.MODEL.MASK_FORMER.TEST.TOPK, score_threshold=args.confidence_threshold
    )
    stream = predictor.stream(window_size, policy=policy)
    return stream, ((r.frame, r) for r in _each_step_within(context, stream.run(source)))


def run_online(
    args, cfg, make_predictor: Callable, categories: Categories, video_id: Optional[str] = None
) -> int:
    """Run the demo online (see the module docstring).

    Args:
        args: the demo's parsed arguments (``input``, ``output``, ``save_masks``,
            ``confidence_threshold``); the outputs were checked by the caller.
        cfg: the frozen config; ``MODEL.MASK_FORMER.TEST.WINDOW_SIZE`` is W (0 means 1).
        make_predictor (callable): cfg -> :class:`VideoPredictor` (its ``segmentation_task``
            chooses instances or id maps).
        categories (Categories): class names, colours and dataset ids of the model's classes.
        video_id (str, optional): the video's id in a panoptic / semantic ``--save-masks``
            folder; default: :func:`~.segmentation.default_video_id` of the input.

    Returns:
        int: the exit status.
    """
    source = open_stream_input(args.input)
    live = isinstance(source, LiveSource)
    try:
        predictor = make_predictor(cfg)
        if source.size is not None:
            predictor.check_frame_size(source.size)
        names = None if live else source.frame_names()
        outputs = _open_outputs(args, predictor, names, source.fps, categories, video_id)
    except BaseException:
        if live:
            source.close()
        raise
    logger.info(f"Input: {source.name if live else source.path}, read frame by frame")
    try:
        stream, results = _results(predictor, source, cfg, args)
    except BaseException:  # nothing was written: no temporary is left behind
        outputs.close(allow_empty=True)
        if live:
            source.close()
        raise
    count = 0
    try:
        for frame, result in tqdm(results, desc="online", unit="frame"):
            outputs.write(frame, result)
            count += 1
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM / SIGHUP (see demo.py)
        logger.info(
            f"Interrupted ({getattr(interrupt, 'signal_name', 'Ctrl-C')}) after "
            f"{plural(count, 'frame')}; dropped {plural(stream.num_frames - count, 'frame')} "
            "waiting for a full window"
        )
        return 0
    finally:
        outputs.close(allow_empty=True)
    written = ", ".join(p for p in (args.output, args.save_masks) if p)
    if live and source.dropped:
        logger.error(
            f"The input {source.name} {source.stop_reason}: the results of the "
            f"{plural(count, 'frame')} read were written to {written}"
        )
        return EXIT_STREAM_DROPPED
    if count == 0:
        raise ValueError(f"the input {args.input} gave no frame")
    logger.info(f"Wrote {plural(count, 'frame')} to {written}")
    return 0


def live_inputs(inputs: List[str]) -> List[str]:
    """The inputs that only the online mode can read (camera indices and stream URLs)."""
    return [item for item in inputs if is_camera_or_url(item)]
