"""Hugging Face datasets in EasyR1's layout (a saved folder, a parquet file) read as samples, trained on and evaluated."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from data_pipelines.formats import DatasetColumns, is_hf_dataset, load_benchmark_samples
from data_pipelines.formats import hf_dataset
from data_pipelines.schema import RecordError
from vlm_rl.cli import main
from vlm_rl.records import load_records
from vlm_rl.training.grpo import GRPOTrainer

from overrides import with_overrides  # tests/integration is on sys.path under pytest

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}
PROBLEM = DatasetColumns(prompt_key="problem")


def square(rgb: tuple[int, int, int], size: int = 56) -> np.ndarray:
    """A `size` square of one colour with a darker centre, so pixels are not all equal."""
    pixels = np.full((size, size, 3), rgb, dtype=np.uint8)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] //= 2
    return pixels


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def easyr1_rows() -> tuple[dict[str, list], list[list[np.ndarray]]]:
    """8 rows: 6 colour questions (one with two images), one lettered choice, one count; and each row's pixels."""
    names = list(COLOURS) * 2
    rows: dict[str, list] = {"problem": [], "answer": [], "images": []}
    pixels: list[list[np.ndarray]] = []
    for index, name in enumerate(names[:6]):
        images = [square(COLOURS[name])] + ([square(COLOURS["blue"], 28)] if index == 1 else [])
        rows["problem"].append("<image>What colour is the square? Answer with one word.")
        rows["answer"].append(name)
        rows["images"].append([{"bytes": png_bytes(p), "path": None} for p in images])
        pixels.append(images)
    choice = square(COLOURS["green"])
    rows["problem"].append("<image>Which colour is the square?\n(A) red\n(B) green")
    rows["answer"].append("B")
    rows["images"].append([{"bytes": png_bytes(choice), "path": None}])
    pixels.append([choice])
    count = square(COLOURS["red"])
    rows["problem"].append("<image>How many squares are there?")
    rows["answer"].append("1")
    rows["images"].append([{"bytes": png_bytes(count), "path": None}])
    pixels.append([count])
    return rows, pixels


FEATURES = datasets.Features(
    {"problem": datasets.Value("string"), "answer": datasets.Value("string"), "images": datasets.Sequence(datasets.Image())}
)


@pytest.fixture(scope="module")
def easyr1(tmp_path_factory) -> tuple[Path, Path, list[list[np.ndarray]]]:
    """(save_to_disk folder, parquet file, pixels of every row's images)."""
    root = tmp_path_factory.mktemp("easyr1")
    rows, pixels = easyr1_rows()
    dataset = datasets.Dataset.from_dict(rows, features=FEATURES)
    dataset.save_to_disk(str(root / "saved"))
    (root / "parquet").mkdir()
    dataset.to_parquet(str(root / "parquet" / "train.parquet"))
    return root / "saved", root / "parquet" / "train.parquet", pixels


def pixels_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("layout", ["saved", "parquet"])
def test_rows_become_samples_with_cached_images(easyr1, layout):
    saved, parquet, pixels = easyr1
    path = saved if layout == "saved" else parquet
    assert is_hf_dataset(path) and not is_hf_dataset(path.parent / "missing.json")
    samples = load_benchmark_samples(path, columns=PROBLEM)
    assert len(samples) == 8
    assert samples[0].problem == "What colour is the square? Answer with one word."
    assert [s.answer for s in samples[:6]] == ["red", "green", "blue", "yellow", "red", "green"]
    assert samples[0].solution == "<answer>red</answer>" and samples[0].origin == f"{path}#0"
    assert [s.problem_type for s in samples] == ["free-form"] * 6 + ["multiple choice", "numerical"]
    assert all(s.data_type == "image" and "<image>" not in s.problem for s in samples)
    cache = (path if path.is_dir() else path.parent) / hf_dataset.IMAGE_CACHE_NAME
    for sample, images in zip(samples, pixels):
        media = [sample.media_path, *sample.extra_images]
        assert len(media) == len(images)
        for file, expected in zip(media, images):
            assert file.parent == cache.absolute()
            np.testing.assert_array_equal(pixels_of(file), expected)
    assert samples[1].extra_images and samples[0].media_path == samples[4].media_path, "same bytes, one file"


def test_second_read_reuses_the_cache(easyr1, monkeypatch):
    saved, _, _ = easyr1
    first = load_benchmark_samples(saved, columns=PROBLEM)
    stamps = {p: p.stat().st_mtime_ns for s in first for p in (s.media_path, *s.extra_images)}
    writes: list[Path] = []
    monkeypatch.setattr(hf_dataset.ImageCache, "_write", lambda self, target, data: writes.append(target))
    second = load_benchmark_samples(saved, columns=PROBLEM)
    assert writes == [] and [s.media_path for s in second] == [s.media_path for s in first]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_read_only_dataset_folder_caches_under_home(easyr1, tmp_path, monkeypatch):
    saved, _, pixels = easyr1
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(hf_dataset.os, "access", lambda path, mode: False)
    sample = load_benchmark_samples(saved, columns=PROBLEM, limit=1)[0]
    assert sample.media_path.parent == tmp_path / ".cache" / "vlm-rl" / "images"
    np.testing.assert_array_equal(pixels_of(sample.media_path), pixels[0][0])


def test_wrong_prompt_key_names_the_column_and_the_setting(easyr1):
    _, parquet, _ = easyr1
    with pytest.raises(RecordError) as caught:
        load_benchmark_samples(parquet)
    assert str(caught.value) == (
        f"{parquet} row 0 has no column 'prompt'; its columns are problem, answer, images: set data.prompt_key=problem"
    )


def test_image_and_video_paths_and_splits(tmp_path, synthetic_data):
    """Media paths are taken under the media root; ``DIR@SPLIT`` picks a split of a folder of split parquet files."""
    video = json.loads(synthetic_data.train_path.read_text())[0]["path"].removeprefix("./")
    media = tmp_path / "media"
    (media / video).parent.mkdir(parents=True)
    shutil.copy(synthetic_data.root / video, media / video)
    Image.fromarray(square(COLOURS["red"])).save(media / "red.png")
    (tmp_path / "data" / "data").mkdir(parents=True)
    for split, answer in (("train", "red"), ("test", "2")):
        rows = {"prompt": ["<video>What moves?", "<image>Colour?"], "answer": [answer, answer],
                "videos": [[video], None], "images": [None, ["red.png"]]}
        datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "data" / "data" / f"{split}-00000-of-00001.parquet"))
    test = load_benchmark_samples(f"{tmp_path / 'data'}@test", media_root=media)
    assert [s.answer for s in test] == ["2", "2"] and [s.problem_type for s in test] == ["numerical"] * 2
    assert [s.data_type for s in test] == ["video", "image"] and [s.problem for s in test] == ["What moves?", "Colour?"]
    assert test[0].media_path == (media / video).absolute() and test[1].media_path == (media / "red.png").absolute()
    train = load_records([str(tmp_path / "data")], str(media), limit=1)
    assert [(s.answer, s.problem_type) for s in train] == [("red", "free-form")]
    with pytest.raises(RecordError, match=r"row 0: field 'videos': media file .* not found.*data.media_root="):
        load_records([str(tmp_path / "data")], None)


@pytest.mark.slow
def test_grpo_step_then_eval_on_a_hf_dataset(easyr1, run_config, repo_root, tmp_path, capsys):
    saved, parquet, _ = easyr1
    config = with_overrides(run_config, [
        f"data.train_files=[{saved}]", f"data.eval_files=[{parquet}]", "data.prompt_key=problem",
        "trainer.steps=1", "trainer.eval_limit=2", "data.prompt_template=short",
    ])
    final = GRPOTrainer(config).train()
    assert (final / "config.json").is_file()
    steps = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("step") == 1 for row in steps)

    out = tmp_path / "eval.json"
    main(["eval", "--model", str(final), "--data", str(parquet), "--config", str(repo_root / "configs" / "quickstart_grpo.yaml"),
          "--out", str(out), "--limit", "3", "data.prompt_key=problem", "eval.max_new_tokens=4"])
    report = json.loads(out.read_text())
    assert report["n"] == 3 and f"on {parquet}" in capsys.readouterr().out


def test_eval_with_the_default_key_fails_in_one_line(easyr1, tiny_model_dir, tmp_path, capsys):
    _, parquet, _ = easyr1
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--model", str(tiny_model_dir), "--data", str(parquet), "--out", str(tmp_path / "r.json")])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.endswith("has no column 'prompt'; its columns are problem, answer, images: set data.prompt_key=problem")


def test_data_show_prints_the_format_and_prompts(easyr1, capsys):
    saved, _, _ = easyr1
    main(["data", "show", str(saved), "data.prompt_key=problem", "--limit", "1"])
    out = capsys.readouterr().out
    assert out.startswith(f"{saved}: hf_dataset format, 8 samples (6 image/free-form, 1 image/multiple choice, 1 image/numerical)")
    assert "What colour is the square?" in out and "<image>" not in out and "=> <answer>red</answer>" in out
