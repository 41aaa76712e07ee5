"""The frames the model saw, after sampling and resizing, as captioned images for a gallery strip."""

from __future__ import annotations

from PIL import Image

from vlm_rl.media import VideoClip


def video_strip(clip: VideoClip) -> tuple[list[tuple[Image.Image, str]], str]:
    """One (frame, caption) per sampled frame, captioned with its index in the file and its time; and a summary."""
    frames = clip.frames.permute(0, 2, 3, 1).contiguous().numpy()
    items = [
        (Image.fromarray(frame), f"frame {index} · {index / clip.source_fps:.2f} s")
        for frame, index in zip(frames, clip.indices)
    ]
    height, width = frames.shape[1:3]
    summary = (
        f"{len(items)} of {clip.total_frames} frames ({clip.source_fps:g} fps video), each resized to {width}x{height}"
    )
    return items, summary


def image_strip(image: Image.Image) -> tuple[list[tuple[Image.Image, str]], str]:
    """The resized image, and a summary with its size."""
    return [(image, "image")], f"the image, resized to {image.width}x{image.height}"
