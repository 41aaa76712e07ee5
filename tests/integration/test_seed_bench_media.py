"""A SEED-Bench-R1 record reaches the model with its progress video and its observation image, in
that order; an image-only record (empty progress) sends the image alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from data_pipelines.schema import RecordError
from data_pipelines.synthetic.mp4 import write_mp4
from vlm_rl.cli import main
from vlm_rl.config import load_config
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.records import load_records

pytestmark = pytest.mark.slow

ROW = {
    "video_source": "Ego4D",
    "question": "Considering the progress shown in the video and my current observation shown in the image, "
    "what action should I take next in order to repot the plant?",
    "choice_a": "water plant",
    "choice_b": "put soil in pot",
    "choice_c": "pick up trowel",
    "choice_d": "remove plant from pot",
    "golden_choice_idx": "B",
    "answer": "put soil in pot",
}


@pytest.fixture
def seed_bench_root(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "videos" / "Ego4D").mkdir(parents=True)
    (tmp_path / "images" / "Ego4D").mkdir(parents=True)
    (tmp_path / "annotations").mkdir()
    write_mp4(tmp_path / "videos" / "Ego4D" / "p1.mp4", rng.integers(0, 255, (4, 56, 56, 3), dtype=np.uint8), 4.0)
    for name in ("o1.png", "o2.png"):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(tmp_path / "images" / "Ego4D" / name)
    rows = [
        {**ROW, "sample_id": "1", "video_basename": "p1.mp4", "current_observation_basename": "o1.png",
         "task_progress_metadata": [{"narration": "pick up pot"}]},
        {**ROW, "sample_id": "2", "video_basename": "unused.mp4", "current_observation_basename": "o2.png",
         "task_progress_metadata": []},
    ]
    path = tmp_path / "annotations" / "validation_L1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_video_then_observation_image_reach_the_processor(seed_bench_root, tiny_model_dir, repo_root):
    samples = load_records([str(seed_bench_root)], None)
    assert [s.data_type for s in samples] == ["video", "image"]
    config = load_config(
        repo_root / "configs" / "quickstart_grpo.yaml", [f"model.path={tiny_model_dir}", "data.prompt_template=video_r1_eval"]
    )
    adapter = load_adapter(str(tiny_model_dir))
    encoder = PromptEncoder(adapter, config.data)

    with_video = encoder.encode(samples[0])
    text = encoder.text(samples[0])
    assert text.index("<|video_pad|>") < text.index("<|image_pad|>") < text.index("Considering the progress")
    assert with_video.pixel_values_videos is not None and with_video.pixel_values is not None
    assert with_video.image_grid_thw.shape == (1, 3) and with_video.video_grid_thw.shape == (1, 3)
    assert int((with_video.input_ids == adapter.image_token_id).sum()) == int(with_video.image_grid_thw.prod()) // 4

    image_only = encoder.encode(samples[1])
    assert image_only.pixel_values_videos is None and image_only.pixel_values is not None
    assert "<|video_pad|>" not in encoder.text(samples[1])

    batch = adapter.collate([with_video, image_only], 2, [[5, 6]] * 4)
    assert torch.equal(batch.model_inputs["image_grid_thw"], torch.cat([with_video.image_grid_thw] * 2 + [image_only.image_grid_thw] * 2))


def test_eval_runs_on_seed_bench_records(seed_bench_root, tiny_model_dir, repo_root, tmp_path, capsys):
    out = tmp_path / "report.json"
    main(["eval", "--model", str(tiny_model_dir), "--data", str(seed_bench_root), "--config",
          str(repo_root / "configs" / "quickstart_grpo.yaml"), "--out", str(out), "data.prompt_template=video_r1_eval",
          "eval.max_new_tokens=4"])
    report = json.loads(out.read_text())
    assert report["n"] == 2 and "n=2" in capsys.readouterr().out


def test_missing_observation_image_names_the_record(seed_bench_root):
    (seed_bench_root.parent.parent / "images" / "Ego4D" / "o1.png").unlink()
    with pytest.raises(RecordError, match=r"validation_L1.jsonl line 1.*current_observation_basename"):
        load_records([str(seed_bench_root)], None)
