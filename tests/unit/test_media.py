"""vlm_rl.media against qwen-vl-utils 0.0.14 (pure rules and decoded frames), readers, errors and the cache."""

from __future__ import annotations

import os

# qwen-vl-utils reads this once, at import time, and caches its backend choice: set it before the import.
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")

import dataclasses
import itertools
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from qwen_vl_utils import vision_process as qvp

from data_pipelines.synthetic.mp4 import write_mp4
from vlm_rl import media
from vlm_rl.media import (
    FrameCache,
    ImageSampling,
    MediaError,
    VideoSampling,
    frame_indices,
    frame_pixel_budget,
    num_frames,
    probe_video,
    read_image,
    read_video,
    resolve_reader,
    smart_resize,
)

F = 28
NTSC = Fraction(30000, 1001)  # 29.97 fps; write_mp4 needs a Fraction for non-integer rates


def textured(t: int, h: int, w: int) -> np.ndarray:
    """A moving colour pattern, so resizing and colour conversion are exercised."""
    i, y, x = np.arange(t)[:, None, None], np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    channels = np.broadcast_arrays((3 * x + 5 * i) % 256, (2 * y + 3 * i) % 256, ((x + y) // 2 + 7 * i) % 256)
    return np.stack(channels, -1).astype(np.uint8)


def ramp(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is the constant 8 * i, so a decoded frame's value identifies its index."""
    return np.stack([np.full((h, w, 3), 8 * i, np.uint8) for i in range(t)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    return {
        "ramp": write_mp4(root / "ramp.mp4", ramp(30), 10),
        "ramp_mkv": write_mp4(root / "ramp.mkv", ramp(30), 10),  # Matroska: no frame count in the header
        "ntsc": write_mp4(root / "ntsc.mp4", textured(120, 144, 176), NTSC),
        "wide": write_mp4(root / "wide.mp4", textured(100, 272, 640), 10),  # 10 s at 640x272: see the worked examples
        "mpeg4": write_mp4(root / "mpeg4.mp4", textured(40, 96, 128), 20, codec="mpeg4"),
    }


def qwen_ele(path: Path, s: VideoSampling) -> dict[str, object]:
    """The qwen-vl-utils message element equivalent to ``s`` (every field explicit)."""
    ele: dict[str, object] = {"type": "video", "video": str(path)}
    ele.update(dataclasses.asdict(s))
    del ele["image_factor"], ele["frame_factor"]
    return {k: v for k, v in ele.items() if v is not None}


# ---------------------------------------------------------------------------------------------- (a) pure rules

SIDES = [1, 13, 27, 28, 29, 42, 48, 64, 100, 144, 176, 224, 272, 360, 480, 640, 720, 1080, 1920, 3840]
PIXEL_BOUNDS = [
    (4 * F * F, 16384 * F * F),
    (128 * F * F, 768 * F * F),
    (128 * F * F, int(128 * F * F * 1.05)),
    (32 * F * F, 64 * F * F),
    (128 * F * F, 90316800 / 20 * 2),
    (128 * F * F, 90316800 / 700 * 2),
]


def expect_equal(ours: Callable[[], int], theirs: Callable[[], int]) -> None:
    """Both return the same value, or both raise ValueError."""
    try:
        expected = theirs()
    except ValueError:
        with pytest.raises(ValueError):
            ours()
        return
    assert ours() == expected


def test_smart_resize_matches_qwen() -> None:
    for h, w in itertools.product(SIDES, SIDES):
        for lo, hi in PIXEL_BOUNDS:
            if max(h, w) / min(h, w) > 200:
                with pytest.raises(ValueError):
                    qvp.smart_resize(h, w, F, lo, hi)
                with pytest.raises(ValueError, match="aspect ratio"):
                    smart_resize(h, w, F, lo, hi)
                continue
            assert smart_resize(h, w, F, lo, hi) == qvp.smart_resize(h, w, F, lo, hi), (h, w, lo, hi)
    assert smart_resize(100, 300, 32, 4 * 32 * 32, 100 * 32 * 32) == qvp.smart_resize(100, 300, 32, 4096, 102400)
    with pytest.raises(ValueError, match="min_pixels"):
        smart_resize(100, 100, F, 200, 100)


def test_num_frames_matches_smart_nframes() -> None:
    totals = [2, 3, 5, 7, 8, 30, 120, 250, 1001, 20000]
    source_fps = [1.0, 10.0, 25.0, float(NTSC), 30.0, 60.0]
    for total, vfps in itertools.product(totals, source_fps):
        grid = itertools.product([0.5, 1.0, 2.0, 3.3, 4.0], [None, 2, 4, 5], [None, 16, 17])
        for fps, min_frames, max_frames in grid:
            ele: dict[str, float] = {"fps": fps}
            if min_frames is not None:
                ele["min_frames"] = min_frames
            if max_frames is not None:
                ele["max_frames"] = max_frames
            s = VideoSampling(**ele)  # type: ignore[arg-type]
            expect_equal(lambda: num_frames(s, total, vfps), lambda: qvp.smart_nframes(ele, total, vfps))
        for n in [2, 3, 4, 5, 7, 8, 9, 16, 33, 250]:
            s = VideoSampling(fps=None, nframes=n)
            expect_equal(lambda: num_frames(s, total, vfps), lambda: qvp.smart_nframes({"nframes": n}, total, vfps))
    # with no fps/nframes key qwen-vl-utils uses fps 2.0 and max_frames min(768, total): our defaults agree
    for total, vfps in itertools.product(totals, source_fps):
        expect_equal(lambda: num_frames(VideoSampling(), total, vfps), lambda: qvp.smart_nframes({}, total, vfps))


def test_frame_indices_is_linspace_round() -> None:
    for total in [2, 3, 30, 120, 250, 1001, 9999]:
        for n in sorted({2, 4, 6, 8, 16, 20, 64, total // 2 * 2, total} & set(range(2, total + 1))):
            got = frame_indices(n, total)
            assert got == torch.linspace(0, total - 1, n).round().long().tolist()
            assert got[0] == 0 and got[-1] == total - 1
            if total <= 1001:
                assert len(set(got)) == n
    # float32, as in qwen-vl-utils: near n == total on long videos some indices repeat
    assert len(set(frame_indices(9998, 9999))) < 9998
    assert frame_indices(6, 30) == [0, 6, 12, 17, 23, 29]
    with pytest.raises(ValueError):
        frame_indices(31, 30)


def test_frame_pixel_budget() -> None:
    s = VideoSampling()
    assert frame_pixel_budget(s, 20) == (100352, 602112)  # per-frame cap 768 * 28^2 binds
    assert frame_pixel_budget(s, 768) == (100352, 90316800 / 768 * 2)  # total budget binds, unrounded
    assert frame_pixel_budget(s, 5000) == (100352, int(100352 * 1.05))  # floor of 1.05 * min_pixels
    assert frame_pixel_budget(VideoSampling(max_pixels=256 * F * F), 20)[1] == 256 * F * F  # a user max lowers
    assert frame_pixel_budget(VideoSampling(max_pixels=1024 * F * F), 20)[1] == 768 * F * F  # but never raises


def test_worked_examples_of_qwen_vl_utils_sampling() -> None:
    """Frame plans that qwen-vl-utils 0.0.11's own functions give: a 10 s 25 fps 640x272 clip -> 20 frames at
    280x644 (16 at 196x476 with Video-R1's vendored 16 frames / 128*28*28 pixels); 4 s 29.97 fps 176x144 -> 8
    frames, upscaled to 308x364."""

    def plan(s: VideoSampling, total: int, fps: float, h: int, w: int) -> tuple[int, int, int]:
        n = num_frames(s, total, fps)
        return (n, *smart_resize(h, w, s.image_factor, *frame_pixel_budget(s, n)))

    assert plan(VideoSampling(), 250, 25.0, 272, 640) == (20, 280, 644)
    assert plan(VideoSampling(), 120, 29.97, 144, 176) == (8, 308, 364)  # upscaled to the 128-token minimum
    assert plan(VideoSampling(max_frames=16, max_pixels=128 * F * F), 250, 25.0, 272, 640) == (16, 196, 476)


def test_sampling_validation_and_overrides() -> None:
    with pytest.raises(ValueError, match="exactly one of fps and nframes"):
        VideoSampling(nframes=8)
    with pytest.raises(ValueError, match="exactly one of fps and nframes"):
        VideoSampling(fps=None)
    with pytest.raises(ValueError, match="min_pixels .* must be <= max_pixels"):
        VideoSampling(max_pixels=64 * F * F)  # the 128-token video min_pixels default: pass both
    with pytest.raises(ValueError, match="min_frames"):
        VideoSampling(min_frames=20, max_frames=16)
    with pytest.raises(ValueError, match="fps must be a positive"):
        VideoSampling(fps=0.0)
    with pytest.raises(ValueError, match="nframes must be an integer"):
        VideoSampling(fps=None, nframes=8.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_pixels"):
        ImageSampling(min_pixels=100, max_pixels=10)

    base = VideoSampling()
    assert base.with_overrides({"nframes": 8}) == VideoSampling(fps=None, nframes=8)
    assert base.with_overrides({"nframes": 8}).with_overrides({"fps": 1.0}) == VideoSampling(fps=1.0)
    assert base.with_overrides({"max_pixels": 256 * F * F, "fps": None}).max_pixels == 256 * F * F
    assert base.with_overrides({}) == base
    with pytest.raises(ValueError, match="not both"):
        base.with_overrides({"fps": 1.0, "nframes": 8})
    with pytest.raises(ValueError, match="unknown video sampling override"):
        base.with_overrides({"resized_height": 28})
    with pytest.raises(ValueError, match="min_pixels"):
        base.with_overrides({"min_pixels": 1000 * F * F})


# ------------------------------------------------------------------------------ (b) frames match qwen-vl-utils

SAMPLINGS = [
    VideoSampling(),
    VideoSampling(fps=1.0),
    VideoSampling(fps=4.0, min_frames=6, max_frames=10),
    VideoSampling(fps=None, nframes=6),
    VideoSampling(fps=None, nframes=7),
    VideoSampling(min_pixels=32 * F * F, max_pixels=64 * F * F),
    VideoSampling(min_pixels=16 * F * F, max_pixels=600 * F * F, total_pixels=1_500_000),
]


MATCH_CASES = [
    *(("ntsc", s) for s in SAMPLINGS),  # 176x144: upscaled to the min_pixels bound
    *(("wide", s) for s in (SAMPLINGS[0], SAMPLINGS[3], SAMPLINGS[5], SAMPLINGS[6])),  # downscaled
    ("ramp", SAMPLINGS[0]),
    ("mpeg4", SAMPLINGS[0]),
    ("mpeg4", SAMPLINGS[4]),
]


@pytest.mark.parametrize(
    ("clip", "sampling"), MATCH_CASES, ids=[f"{c}-{s.fps}-{s.nframes}-{s.max_pixels}" for c, s in MATCH_CASES]
)
def test_read_video_matches_fetch_video(clips: dict[str, Path], clip: str, sampling: VideoSampling) -> None:
    assert qvp.get_video_reader_backend() == "decord", "FORCE_QWENVL_VIDEO_READER must be set before qwen_vl_utils"
    expected, expected_fps = qvp.fetch_video(qwen_ele(clips[clip], sampling), return_video_sample_fps=True)
    got = read_video(clips[clip], sampling, reader="decord")
    assert got.frames.dtype == torch.uint8
    assert got.frames.shape == expected.shape
    assert got.sample_fps == expected_fps
    assert torch.equal(got.frames.float(), expected), (got.frames.float() - expected).abs().max()


def test_default_sampling_matches_bare_fetch_video(clips: dict[str, Path]) -> None:
    expected, expected_fps = qvp.fetch_video({"video": str(clips["wide"])}, return_video_sample_fps=True)
    got = read_video(clips["wide"], VideoSampling())
    assert got.frames.shape == expected.shape == (20, 3, 280, 644)
    assert got.sample_fps == expected_fps == 2.0
    assert torch.equal(got.frames.float(), expected)


@pytest.mark.parametrize(
    "sampling", [VideoSampling(), VideoSampling(min_pixels=32 * F * F, max_pixels=64 * F * F)], ids=["default", "small"]
)
def test_hf_processor_sees_the_same_pixels(clips: dict[str, Path], sampling: VideoSampling) -> None:
    """uint8 clip frames and qwen-vl-utils' float frames give the same processor output (matching size bounds)."""
    from transformers import Qwen2VLVideoProcessor

    processor = Qwen2VLVideoProcessor(size={"shortest_edge": sampling.min_pixels, "longest_edge": sampling.max_pixels})
    expected = qvp.fetch_video(qwen_ele(clips["ntsc"], sampling))
    clip = read_video(clips["ntsc"], sampling, reader="decord")
    ours = processor(videos=[clip.frames], return_tensors="pt")
    theirs = processor(videos=[expected], return_tensors="pt")
    assert torch.equal(ours["video_grid_thw"], theirs["video_grid_thw"])
    assert torch.equal(ours["pixel_values_videos"], theirs["pixel_values_videos"])


# ------------------------------------------------------------------------------------- (c) decord == PyAV

@pytest.mark.parametrize("clip", ["ramp_mkv", "ntsc", "wide", "mpeg4"])
@pytest.mark.parametrize("sampling", [SAMPLINGS[0], SAMPLINGS[4]], ids=lambda s: f"{s.fps}-{s.nframes}")
def test_decord_and_pyav_agree(clips: dict[str, Path], clip: str, sampling: VideoSampling) -> None:
    a = read_video(clips[clip], sampling, reader="decord")
    b = read_video(clips[clip], sampling, reader="pyav")
    assert a.indices == b.indices
    assert a.total_frames == b.total_frames
    assert a.source_fps == pytest.approx(b.source_fps, rel=1e-6)
    assert a.sample_fps == pytest.approx(b.sample_fps, rel=1e-6)
    assert a.frames.shape == b.frames.shape
    diff = (a.frames.float() - b.frames.float()).abs()
    assert diff.mean() <= 0.5 and diff.max() <= 8


def test_probe_video(clips: dict[str, Path]) -> None:
    for reader in ("decord", "pyav"):
        assert probe_video(clips["ntsc"], reader) == media.VideoInfo(120, pytest.approx(float(NTSC)), 144, 176)
        assert probe_video(clips["ramp_mkv"], reader) == media.VideoInfo(30, 10.0, 48, 64)


def test_auto_reader_is_decord_else_pyav(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_reader("auto") == "decord"
    monkeypatch.setattr(media.video, "_decord_importable", lambda: False)
    assert resolve_reader("auto") == "pyav"
    assert read_video(clips["ramp"], VideoSampling()).indices == (0, 6, 12, 17, 23, 29)
    with pytest.raises(ValueError, match="unknown video reader"):
        resolve_reader("torchvision")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ (d) the sampled frames really

@pytest.mark.parametrize("reader", ["decord", "pyav"])
@pytest.mark.parametrize("clip", ["ramp", "ramp_mkv"])
@pytest.mark.parametrize(
    ("sampling", "indices"),
    [
        (VideoSampling(), [0, 6, 12, 17, 23, 29]),
        (VideoSampling(fps=5.0), frame_indices(14, 30)),
        (VideoSampling(fps=None, nframes=10), [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]),
        (VideoSampling(fps=None, nframes=30), list(range(30))),
    ],
)
def test_decoded_frames_are_the_sampled_ones(
    clips: dict[str, Path], reader: str, clip: str, sampling: VideoSampling, indices: list[int]
) -> None:
    got = read_video(clips[clip], sampling, reader=reader)  # type: ignore[arg-type]
    assert list(got.indices) == indices
    values = got.frames.float().flatten(1)
    assert (values.max(1).values - values.min(1).values).max() <= 2  # still flat after resizing
    assert torch.round(values.mean(1) / 8).long().tolist() == indices
    assert got.sample_fps == pytest.approx(len(indices) / 30 * 10)


# ------------------------------------------------------------------------------------------ (e) MediaError

def write_faststart_mp4(path: Path, frames: np.ndarray, fps: int) -> Path:
    """An mp4 with its index (moov) before the data, so a truncated copy keeps a valid header."""
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def make_bad_video(kind: str, root: Path) -> Path:
    path = root / f"{kind}.mp4"
    if kind == "missing":
        return path
    if kind == "empty":
        path.touch()
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        data = write_mp4(root / "full.mp4", textured(60, 144, 176), 10).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_faststart":
        data = write_faststart_mp4(root / "full_fs.mp4", textured(60, 144, 176), 10).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "no_frames":
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            container.start_encoding()
    return path


BAD_VIDEOS = {
    "missing": "not found",
    "empty": "empty",
    "random_bytes": "cannot decode",
    "truncated": "cannot decode",
    "truncated_faststart": "cannot decode|truncated",
    "no_frames": "no video stream or no frames",
}


@pytest.mark.parametrize("reader", ["decord", "pyav"])
@pytest.mark.parametrize("kind", sorted(BAD_VIDEOS))
def test_bad_videos_raise_media_error(tmp_path: Path, kind: str, reader: str) -> None:
    path = make_bad_video(kind, tmp_path)
    for call in (lambda: probe_video(path, reader), lambda: read_video(path, VideoSampling(), reader=reader)):
        with pytest.raises(MediaError, match=BAD_VIDEOS[kind]) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, ValueError)
        assert str(path) in message and "\n" not in message


@pytest.mark.parametrize("reader", ["decord", "pyav"])
def test_too_few_frames_raise_media_error(tmp_path: Path, clips: dict[str, Path], reader: str) -> None:
    one = write_mp4(tmp_path / "one.mp4", ramp(1), 10)
    assert probe_video(one, reader).total_frames == 1  # decodable, but no sampling can take 2 frames
    with pytest.raises(MediaError, match="cannot be sampled") as info:
        read_video(one, VideoSampling(), reader=reader)
    assert str(one) in str(info.value)
    with pytest.raises(MediaError, match="cannot be sampled"):
        read_video(clips["ramp"], VideoSampling(fps=None, nframes=32), reader=reader)


def test_bad_images_raise_media_error(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    Image.fromarray(textured(1, 200, 300)[0]).save(good, quality=90)
    data = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.png").write_bytes(b"\x89PNG not really" * 50)
    (tmp_path / "empty.png").touch()
    cases = {
        "missing.png": "not found",
        "empty.png": "empty",
        "random.png": "cannot read",
        "truncated.jpg": "cannot read",
    }
    for name, pattern in cases.items():
        with pytest.raises(MediaError, match=pattern) as info:
            read_image(tmp_path / name, ImageSampling())
        assert str(tmp_path / name) in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------- images

@pytest.mark.parametrize(
    ("size", "sampling"),
    [
        ((30, 50), ImageSampling()),  # upscaled to the 4-token minimum
        ((700, 1000), ImageSampling(max_pixels=256 * F * F)),
        ((333, 517), ImageSampling()),
    ],
)
def test_read_image_matches_fetch_image(tmp_path: Path, size: tuple[int, int], sampling: ImageSampling) -> None:
    path = tmp_path / "img.png"
    Image.fromarray(textured(3, *size)[2]).save(path)
    ele = {"image": str(path), "min_pixels": sampling.min_pixels, "max_pixels": sampling.max_pixels}
    expected = qvp.fetch_image(ele)
    got = read_image(path, sampling)
    assert got.mode == "RGB" and got.size == expected.size
    assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_read_image_composites_rgba_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((56, 84, 4), np.uint8)
    rgba[:, :42] = (255, 0, 0, 255)  # opaque red left half, fully transparent right half
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    got = np.asarray(read_image(path, ImageSampling()))
    assert np.array_equal(got, np.asarray(qvp.fetch_image({"image": str(path)})))
    assert (got[:, -5:] == 255).all() and (got[:, :5] == (255, 0, 0)).all()


# ----------------------------------------------------------------------------------------------- (f) cache

def test_cache_hits_and_misses_after_change(tmp_path: Path) -> None:
    path = write_mp4(tmp_path / "v.mp4", ramp(30), 10)
    cache = FrameCache(max_items=4)
    first = cache.get_video(path, VideoSampling(), "decord")
    assert (cache.hits, cache.misses) == (0, 1)
    assert cache.get_video(str(path), VideoSampling(), "auto") is first  # same resolved path and reader
    assert (cache.hits, cache.misses) == (1, 1)
    cache.get_video(path, VideoSampling(fps=1.0), "decord")
    cache.get_video(path, VideoSampling(), "pyav")
    assert (cache.hits, cache.misses) == (1, 3)

    stat = path.stat()
    write_mp4(path, ramp(30)[::-1].copy(), 10)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = cache.get_video(path, VideoSampling(), "decord")
    assert changed is not first and (cache.hits, cache.misses) == (1, 4)
    assert changed.frames[0].float().mean() > first.frames[0].float().mean() + 100


def test_cache_lru_images_and_errors(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (64, 48), (10, 20, 30)).save(a)
    Image.new("RGB", (64, 48), (30, 20, 10)).save(b)
    cache = FrameCache(max_items=1)
    image = cache.get_image(a, ImageSampling())
    assert cache.get_image(a, ImageSampling()) is image
    cache.get_image(b, ImageSampling())  # evicts a
    cache.get_image(a, ImageSampling())
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 1)
    with pytest.raises(MediaError, match="not found"):
        cache.get_image(tmp_path / "missing.png", ImageSampling())
    with pytest.raises(ValueError):
        FrameCache(max_items=0)
    cache.clear()
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)


def test_cache_byte_budget_evicts_oldest_and_zero_turns_it_off(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (64, 48), (i, 0, 0)).save(paths[-1])
    resized = FrameCache().get_image(paths[0], ImageSampling())  # smart-resized to multiples of 28
    one = resized.width * resized.height * 3
    cache = FrameCache(max_bytes=2 * one)
    for path in paths:
        cache.get_image(path, ImageSampling())
    assert (len(cache), cache.nbytes) == (2, 2 * one)
    cache.get_image(paths[2], ImageSampling())
    cache.get_image(paths[0], ImageSampling())  # the oldest was evicted by the byte budget
    assert (cache.hits, cache.misses) == (1, 4)
    off = FrameCache(max_bytes=0)
    first = off.get_image(paths[0], ImageSampling())
    assert off.get_image(paths[0], ImageSampling()) is not first and (off.hits, off.misses, len(off), off.nbytes) == (0, 2, 0, 0)
    with pytest.raises(ValueError):
        FrameCache(max_bytes=-1)


def test_cache_is_thread_safe(clips: dict[str, Path]) -> None:
    cache = FrameCache()
    first = cache.get_video(clips["ramp"], VideoSampling(), "decord")
    results: list[object] = []

    def work() -> None:
        for _ in range(50):
            results.append(cache.get_video(clips["ramp"], VideoSampling(), "decord"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is first for r in results)
    assert (cache.hits, cache.misses) == (400, 1)
