"""Video and image decoding, frame sampling and caching (qwen-vl-utils 0.0.14 semantics, explicit readers)."""

from vlm_rl.media.cache import FrameCache
from vlm_rl.media.image import read_image
from vlm_rl.media.sampling import (
    ImageSampling,
    VideoSampling,
    frame_indices,
    frame_pixel_budget,
    num_frames,
    smart_resize,
)
from vlm_rl.media.video import MediaError, ReaderName, VideoClip, VideoInfo, probe_video, read_video, resolve_reader

__all__ = [
    "FrameCache",
    "ImageSampling",
    "MediaError",
    "ReaderName",
    "VideoClip",
    "VideoInfo",
    "VideoSampling",
    "frame_indices",
    "frame_pixel_budget",
    "num_frames",
    "probe_video",
    "read_image",
    "read_video",
    "resolve_reader",
    "smart_resize",
]
