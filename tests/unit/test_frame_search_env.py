"""The runnable seek_video_frames tool on real mp4 files: frame cache, scorers, selection and turn environment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data_pipelines.synthetic.mp4 import write_mp4
from data_pipelines.synthetic.vocabulary import BACKGROUND, COLORS
from vlm_rl.media import MediaError
from vlm_rl.rollout.frame_search import (
    ColorScorer,
    FrameSearchTool,
    ScoredFrames,
    SearchFrames,
    make_scorer,
    search_environment,
)
from vlm_rl.rollout.turns import Outcome, ToolCallRejected, parse_error_message

SMALL = {"min_pixels": 4 * 28 * 28, "max_pixels": 4 * 28 * 28}
"""Keeps the 64x64 test frames at 56x56 cache frames."""
RED_FRAMES = (10, 11, 12)
THINK = "<think>search</think>"


def square_frames(count: int, red_frames: tuple[int, ...] = ()) -> np.ndarray:
    """`count` 64x64 frames with a blue square in each and a red square in `red_frames` only."""
    frames = np.empty((count, 64, 64, 3), dtype=np.uint8)
    frames[:] = BACKGROUND
    frames[:, 8:24, 8:24] = COLORS["blue"]
    for index in red_frames:
        frames[index, 36:52, 36:52] = COLORS["red"]
    return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s at 2 fps: 40 frames, so cache frame j is source frame j and shows j / 2 seconds."""
    return write_mp4(tmp_path_factory.mktemp("videos") / "squares.mp4", square_frames(40, RED_FRAMES), 2.0)


@pytest.fixture
def frames() -> SearchFrames:
    return SearchFrames(**SMALL)


@pytest.fixture
def scores() -> ScoredFrames:
    return ScoredFrames(ColorScorer())


def call(arguments: dict) -> str:
    return THINK + "<tool_call>" + json.dumps({"name": "seek_video_frames", "arguments": arguments}) + "</tool_call>"


def stamps(content: list[dict]) -> list[str]:
    return [item["text"] for item in content[:-1:2]]


def test_cache_frames_of_a_real_video(video: Path, frames: SearchFrames) -> None:
    cached = frames.video(video)
    assert cached.frames.dtype == torch.uint8 and tuple(cached.frames.shape) == (40, 3, 56, 56)
    assert (cached.fps, cached.duration, cached.num_frames) == (2.0, 20.0, 40)
    wide = SearchFrames(min_pixels=28 * 28, max_pixels=1000).video(video)
    assert all(side % 28 == 0 for side in wide.frames.shape[2:]) and wide.frames.shape[2] * wide.frames.shape[3] <= 1000


def test_frames_are_decoded_once_across_calls_and_environments(
    video: Path, frames: SearchFrames, scores: ScoredFrames
) -> None:
    first, second = search_environment(video, frames, scores), search_environment(video, frames, scores)
    results = [env.step([], call({"query": "red"})) for env in (first, second, first)]
    assert all(result.outcome is Outcome.TOOL for result in results)
    assert (frames.cache.misses, frames.cache.hits) == (1, 2)
    assert (scores.computed, scores.reused) == (40, 80)
    assert stamps(results[0].tool_message["content"]) == stamps(results[1].tool_message["content"])


def test_window_content_and_exact_pixels(video: Path, frames: SearchFrames, scores: ScoredFrames) -> None:
    content = FrameSearchTool(frames, scores, video)([], {"query": "", "start_time": 5, "end_time": 8})
    expected = ["5.0s", "5.5s", "6.0s", "6.5s", "7.0s", "7.5s", "8.0s"]
    assert [item["type"] for item in content] == ["text", "image"] * 7 + ["text"]
    assert stamps(content) == expected
    assert content[-1]["text"].startswith(f"Here are selected frames. They are located at {','.join(expected)}.\n")
    cached = frames.video(video).frames
    for index, item in zip(range(10, 17), content[1::2]):
        assert item["image"].mode == "RGB"
        assert np.array_equal(np.asarray(item["image"]), cached[index].permute(1, 2, 0).numpy())


def test_empty_query_spreads_frames_without_embedding(video: Path, frames: SearchFrames, scores: ScoredFrames) -> None:
    content = FrameSearchTool(frames, scores, video)([], {"query": "  "})
    assert stamps(content) == ["0.0s", "3.0s", "5.5s", "8.5s", "11.0s", "14.0s", "16.5s", "19.5s"]
    assert scores.computed == 0


def test_colour_query_finds_the_frames_showing_it(video: Path, frames: SearchFrames, scores: ScoredFrames) -> None:
    tool = FrameSearchTool(frames, scores, video)
    assert stamps(tool([], {"query": "the red square", "num_frames": 3})) == ["5.0s", "5.5s", "6.0s"]
    assert stamps(tool([], {"query": "red", "start_time": 5.5, "end_time": 15, "num_frames": 2})) == ["5.5s", "6.0s"]
    assert scores.computed == 40


@pytest.mark.parametrize(
    "window",
    [{"start_time": 21}, {"start_time": 30, "end_time": 40}, {"start_time": 10, "end_time": 5}, {"end_time": -1}],
    ids=["after-the-end", "beyond", "end-before-start", "before-zero"],
)
def test_window_without_frames_is_a_parse_error(
    video: Path, frames: SearchFrames, scores: ScoredFrames, window: dict
) -> None:
    with pytest.raises(ToolCallRejected, match="holds no frame of .*squares.mp4"):
        FrameSearchTool(frames, scores, video)([], {"query": "red", **window})
    result = search_environment(video, frames, scores).step([], call({"query": "red", **window}))
    assert result.outcome is Outcome.PARSE_ERROR and result.tool_message == parse_error_message()


@pytest.mark.parametrize("asked, returned", [(0, 1), (100, 8), (3, 3)])
def test_num_frames_is_clamped(
    video: Path, frames: SearchFrames, scores: ScoredFrames, asked: int, returned: int
) -> None:
    content = FrameSearchTool(frames, scores, video)([], {"query": "blue", "num_frames": asked})
    assert len(content) == 2 * returned + 1


class RecordingScorer(ColorScorer):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_text(self, query: str) -> torch.Tensor:
        self.queries.append(query)
        return super().embed_text(query)


def test_file_path_query_is_defused_not_opened(
    video: Path, frames: SearchFrames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "red.mp4").write_bytes(b"not a video")
    monkeypatch.chdir(tmp_path)
    scorer = RecordingScorer()
    content = FrameSearchTool(frames, ScoredFrames(scorer), video)([], {"query": "red.mp4", "num_frames": 3})
    assert scorer.queries == ["red.mp4  \t."]
    assert stamps(content) == ["5.0s", "5.5s", "6.0s"]


def test_video_shorter_than_one_cache_frame(tmp_path: Path, frames: SearchFrames, scores: ScoredFrames) -> None:
    short = write_mp4(tmp_path / "short.mp4", square_frames(1), 4.0)
    with pytest.raises(MediaError, match=r"short.mp4 lasts 0.25 s, shorter than one frame .* at 2 fps"):
        frames.video(short)
    with pytest.raises(MediaError, match="short.mp4"):
        search_environment(short, frames, scores).step([], call({"query": "red"}))
    with pytest.raises(MediaError, match="video file not found: .*missing.mp4"):
        frames.video(tmp_path / "missing.mp4")


def test_source_slower_than_the_cache_rate_keeps_its_own_fps(tmp_path: Path, scores: ScoredFrames) -> None:
    slow = write_mp4(tmp_path / "slow.mp4", square_frames(6, (4,)), 1.0)
    cached = SearchFrames(**SMALL).video(slow)
    assert (cached.num_frames, cached.fps, cached.duration) == (6, 1.0, 6.0)
    content = FrameSearchTool(SearchFrames(**SMALL), scores, slow)([], {"query": "red", "num_frames": 1})
    assert stamps(content) == ["4.0s"]


def test_colour_scorer_ranks_the_queried_colour_first() -> None:
    frames = torch.tensor(BACKGROUND, dtype=torch.uint8)[None, :, None, None].repeat(3, 1, 32, 32)
    frames[0, :, 4:20, 4:20] = torch.tensor(COLORS["red"], dtype=torch.uint8)[:, None, None]
    frames[1, :, 4:12, 4:12] = torch.tensor(COLORS["green"], dtype=torch.uint8)[:, None, None]
    scorer = ColorScorer()
    embedded = scorer.embed_frames(frames)
    assert embedded.shape == (3, len(COLORS) + 1)
    assert torch.allclose(embedded.sum(1), torch.ones(3))
    assert embedded[0, list(COLORS).index("red")] == pytest.approx(0.25)

    def ranking(query: str) -> list[int]:
        relevance = torch.nn.functional.cosine_similarity(embedded, scorer.embed_text(query)[None], dim=1)
        return torch.argsort(relevance, descending=True, stable=True).tolist()

    assert ranking("a RED square")[0] == 0
    assert ranking("green?")[0] == 1
    assert ranking("something moving")[2] == 2


def test_embeddings_are_computed_lazily_and_bounded(video: Path, tmp_path: Path, frames: SearchFrames) -> None:
    scores = ScoredFrames(ColorScorer(), max_videos=1)
    window = scores.frame_embeddings(frames.video(video), range(10, 17))
    assert scores.computed == 7
    whole = scores.frame_embeddings(frames.video(video), range(40))
    assert (scores.computed, scores.reused) == (40, 7)
    assert torch.equal(whole[10:17], window)
    other = write_mp4(tmp_path / "other.mp4", square_frames(4), 2.0)
    scores.frame_embeddings(frames.video(other), range(4))
    scores.frame_embeddings(frames.video(video), [0])
    assert len(scores) == 1 and scores.computed == 45


def test_make_scorer_refuses_bad_names_and_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown frame scorer 'clip'; choose one of \\['colors', 'siglip'\\]"):
        make_scorer("clip")
    with pytest.raises(ValueError, match="colors scorer takes no checkpoint"):
        make_scorer("colors", str(tmp_path))
    with pytest.raises(ValueError, match="siglip scorer needs a checkpoint"):
        make_scorer("siglip")
    with pytest.raises(ValueError, match="missing is not a directory"):
        make_scorer("siglip", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="has no config.json"):
        make_scorer("siglip", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="is a 'gpt2' model, not one of"):
        make_scorer("siglip", str(tmp_path))


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised SigLIP with a word-level tokenizer, saved locally (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    words = ["<pad>", "<unk>", *COLORS, "square", "the"]
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", model_max_length=16
    )
    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = SiglipConfig(
        text_config={**tiny, "vocab_size": len(words), "max_position_embeddings": 16, "bos_token_id": 0,
                     "eos_token_id": 0, "pad_token_id": 0},
        vision_config={**tiny, "image_size": 28, "patch_size": 14},
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("siglip")
    SiglipModel(config).save_pretrained(path)
    image_processor = SiglipImageProcessor(size={"height": 28, "width": 28})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def test_siglip_scorer_embeds_normalised_and_cached(video: Path, frames: SearchFrames, tiny_siglip: Path) -> None:
    scorer = make_scorer("siglip", str(tiny_siglip))
    cached = frames.video(video)
    embedded = scorer.embed_frames(cached.frames[:5])
    assert embedded.shape == (5, 32) and embedded.dtype == torch.float32
    assert torch.allclose(embedded.norm(dim=1), torch.ones(5), atol=1e-5)
    assert not torch.allclose(embedded[0], scorer.embed_frames(cached.frames[10:11])[0])
    text = scorer.embed_text("the red square")
    assert text.shape == (32,) and text.norm() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(text, scorer.embed_text("the blue square"))
    scores = ScoredFrames(scorer)
    tool = FrameSearchTool(frames, scores, video)
    first = tool([], {"query": "red", "start_time": 2, "end_time": 9.5, "num_frames": 4})
    second = tool([], {"query": "red", "start_time": 2, "end_time": 9.5, "num_frames": 4})
    assert (scores.computed, scores.reused) == (16, 16)
    assert stamps(first) == stamps(second) and len(stamps(first)) == 4
    direct = scorer.embed_frames(cached.frames[4:9])
    assert torch.allclose(scores.frame_embeddings(cached, range(4, 9)), direct, atol=1e-5)
