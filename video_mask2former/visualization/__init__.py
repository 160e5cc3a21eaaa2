"""Drawing video results on frames and writing frames (OpenCV / NumPy, no detectron2).

* :mod:`.draw`: one colour per instance through the video, masks, outlines and labels
  (:class:`VideoVisualizer` for a whole-video result, :func:`draw_frame_result` for a stream's
  per-frame result);
* :mod:`.segments`: video panoptic / semantic results, frame by frame (thing segments in the colour
  of their id, stuff and semantic classes in their class colour);
* :mod:`.video_io`: a folder of images or an ``.mp4`` (H.264 with PyAV, else OpenCV's mp4v) and
  JSON lines, written under temporary names and renamed when complete.

Reading frames is :class:`video_mask2former.data.frames.FrameSource` (files) and
:class:`video_mask2former.data.live.LiveSource` (cameras, streams).
"""

from .draw import (
    LabelBox,
    VideoVisualizer,
    draw_frame_result,
    draw_instances,
    instance_colors,
    label_layout,
    track_color,
)
from .segments import (
    SegmentClasses,
    class_color,
    draw_frame_segmentation,
    draw_panoptic_frame,
    draw_semantic_frame,
)
from .video_io import (
    FrameWriter,
    JsonLinesWriter,
    check_frame_folder,
    check_writable,
    h264_available,
)

__all__ = [
    "FrameWriter",
    "JsonLinesWriter",
    "LabelBox",
    "SegmentClasses",
    "VideoVisualizer",
    "check_frame_folder",
    "check_writable",
    "class_color",
    "draw_frame_result",
    "draw_frame_segmentation",
    "draw_instances",
    "draw_panoptic_frame",
    "draw_semantic_frame",
    "h264_available",
    "instance_colors",
    "label_layout",
    "track_color",
]
