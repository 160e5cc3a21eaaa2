"""The demo's ``--online`` mode: results written frame by frame as soon as they are known.

The input is read one frame at a time (:func:`video_mask2former.data.live.open_stream_input`: a
camera index, a stream URL, a video file, or frames in a folder) and pushed into the model's
stream (:meth:`VideoPredictor.stream`, W = ``--window-size``, default 1: per frame). Each frame's
result is drawn and written to ``--output`` (a folder or an ``.mp4``) and, with ``--save-masks``,
appended to a JSON-lines file (one line per frame, flushed at once)::

    {"frame": 0, "instances": [{"track_id": 3, "category_id": 1, "score": 0.93,
                                "segmentation": {"size": [H, W], "counts": "..."}}, ...]}

The run ends at the end of the stream (the partial last window is run), on Ctrl-C (the frames
waiting for their window are dropped) or on an error; in every case what was written stays and
the files are closed properly (the ``.mp4`` is finalised). Exit status: 0 at the end of the stream
or on Ctrl-C; 1 when the stream dropped before its announced end (a truncated file, a lost
connection) or on an error, with a message saying what happened.
"""

import logging
from typing import Callable, Dict, List, Optional, Sequence

from tqdm import tqdm
from video_io import FrameWriter, JsonLinesWriter
from visualizer import draw_frame_result

from video_mask2former.data.live import LiveSource, is_camera_or_url, open_stream_input
from video_mask2former.evaluation.results import encode_mask_frames
from video_mask2former.modeling.streaming import FrameResult, StreamPolicy
from video_mask2former.structures import RLEVideoMask

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
    """The writers of an online run, opened (and so checked) before any frame is read."""

    def __init__(self, output: Optional[str], save_masks: Optional[str]):
        self.frames: Optional[FrameWriter] = None
        self.masks = JsonLinesWriter(save_masks) if save_masks else None
        self._output = output

    def open_frames(self, names: Optional[Sequence[str]], fps: float) -> None:
        if self._output:
            self.frames = FrameWriter(self._output, names, fps)

    def write(self, frame, result: FrameResult, class_names, to_dataset_id) -> None:
        if self.frames is not None:
            self.frames.write(draw_frame_result(frame, result, class_names))
        if self.masks is not None:
            self.masks.write(frame_result_to_json(result, to_dataset_id))

    def close(self) -> None:
        """Close every writer; a writer that got no frame is not an error here."""
        if self.masks is not None:
            self.masks.close()
        if self.frames is not None:
            self.frames.close(allow_empty=True)


def run_online(
    args,
    cfg,
    make_predictor: Callable,
    class_names_of: Callable,
    dataset_ids_of: Callable,
) -> int:
    """Run the demo online (see the module docstring).

    Args:
        args: the demo's parsed arguments (``input``, ``output``, ``save_masks``,
            ``confidence_threshold``).
        cfg: the frozen config; ``MODEL.MASK_FORMER.TEST.WINDOW_SIZE`` is W (0 means 1).
        make_predictor (callable): cfg -> :class:`VideoPredictor`.
        class_names_of, dataset_ids_of (callable): (predictor, num_classes) -> class names /
            contiguous -> dataset category id.

    Returns:
        int: the exit status.
    """
    outputs = _Outputs(args.output, args.save_masks)  # unwritable outputs fail here, first
    try:
        source = open_stream_input(args.input)
        names = None if isinstance(source, LiveSource) else source.frame_names()
        outputs.open_frames(names, source.fps)
        name = source.name if isinstance(source, LiveSource) else source.path
        logger.info(f"Input: {name}, read frame by frame")
        predictor = make_predictor(cfg)
        num_classes = cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
        class_names = class_names_of(predictor, num_classes)
        to_dataset_id = dataset_ids_of(predictor, num_classes)
        window_size = max(1, cfg.MODEL.MASK_FORMER.TEST.WINDOW_SIZE)
        policy = StreamPolicy(
            topk=cfg.MODEL.MASK_FORMER.TEST.TOPK, score_threshold=args.confidence_threshold
        )
        stream = predictor.stream(window_size, policy=policy)
        count = 0
        try:
            for result in tqdm(stream.run(source), desc="online", unit="frame"):
                outputs.write(result.frame, result, class_names, to_dataset_id)
                count += 1
        except KeyboardInterrupt:
            logger.info(
                f"Interrupted (Ctrl-C) after {count} frames; {stream.num_frames - count} frames "
                f"waiting for their window were dropped"
            )
            return 0
    finally:
        outputs.close()
    written = ", ".join(p for p in (args.output, args.save_masks) if p)
    if isinstance(source, LiveSource) and source.dropped:
        logger.error(
            f"The input {source.name} {source.stop_reason}: the results of the {count} frames "
            f"read were written to {written}"
        )
        return EXIT_STREAM_DROPPED
    if count == 0:
        raise ValueError(f"the input {args.input} gave no frame")
    logger.info(f"Wrote {count} frames to {written}")
    return 0


def live_inputs(inputs: List[str]) -> List[str]:
    """The inputs that only the online mode can read (camera indices and stream URLs)."""
    return [item for item in inputs if is_camera_or_url(item)]
