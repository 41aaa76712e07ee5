#!/usr/bin/env bash
# The frame-search turn loop on a real vLLM engine (a CUDA GPU and vllm needed; not part of the test suite).
#
# Builds a random-weight Qwen2.5-VL and a few synthetic needle clips in WORK_DIR, then
#   1. runs the turn loop with turn 1 scripted to call seek_video_frames and turn 2 generated greedily by vLLM,
#      and checks that vLLM's turn-2 prompt is exactly the trained ids (the tool frames expanded by vLLM itself);
#   2. runs the turn loop sampled by vLLM alone (a placeholder frame for rows that never search);
# and prints every row's outcomes, tool calls and frames. Exits 1 when a check fails.
#
# Usage: scripts/gpu_search_check.sh [WORK_DIR]
#   SIZE=tiny|small|3b   model widths (default small: head size 64; 3b: Qwen2.5-VL-3B's widths, about 8 GB in bf16)
#   GPU_MEM=0.5          fraction of GPU memory vLLM may take
#   PYTHON=python        the interpreter with vlm-rl and vllm installed
set -euo pipefail
cd "$(dirname "$0")/.."
WORK_DIR="${1:-$(mktemp -d)}"
export WORK_DIR SIZE="${SIZE:-small}" GPU_MEM="${GPU_MEM:-0.5}"
exec "${PYTHON:-python}" - <<'EOF'
import dataclasses
import os
import sys
from pathlib import Path

import torch

try:
    import vllm
except ImportError as err:
    sys.exit(f"gpu_search_check: vllm is not installed ({err}); pip install -e '.[vllm]' on a CUDA machine")
if not torch.cuda.is_available():
    sys.exit("gpu_search_check: no CUDA device; vLLM runs on CUDA only")

from data_pipelines.formats.video_r1 import load_samples
from data_pipelines.search_prompt import TOOL_NAME
from data_pipelines.synthetic.generator import make_dataset
from vlm_rl.config import load_config
from vlm_rl.models import tiny
from vlm_rl.models.loading import load_adapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import SamplingParams
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.rollout.vllm_engine import LocalVLLM, VLLMRolloutEngine
from vlm_rl.rollout.vllm_requests import build_request
from vlm_rl.training.frame_search import PLACEHOLDER_CALL, SearchTools

WORK, SIZE = Path(os.environ["WORK_DIR"]), os.environ["SIZE"]
# Qwen2.5-VL-3B's widths and depths over the tiny tokenizer's vocabulary
DIMS = dataclasses.replace(tiny.QWEN25_VL_SIZES["3b"], vocab_size=None, fullatt_every=None) if SIZE == "3b" else SIZE
CALL = f'<tool_call>{{"name": "{TOOL_NAME}", "arguments": {{"query": "red", "start_time": 0, "end_time": 1}}}}</tool_call>'


class ScriptedFirstTurn:
    """A backend whose first call answers every request with `first_turn`; later calls go to vLLM."""

    def __init__(self, local: LocalVLLM, first_turn: list[int]) -> None:
        self.local = local
        self.first_turn = first_turn
        self.calls = 0

    def generate(self, requests, sampling):
        self.calls += 1
        if self.calls == 1:
            return [[(list(self.first_turn), "stop")] * sampling["n"] for _ in requests]
        return self.local.generate(requests, sampling)

    def load_weights(self, named):
        return self.local.load_weights(named)


class Recorded:
    """An engine that passes every call on and keeps the prompts of each."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.prompts = []

    def generate(self, prompts, params, *, streamer=None):
        self.prompts.append(list(prompts))
        return self.engine.generate(prompts, params, streamer=streamer)


def show(title, out) -> None:
    print(f"== {title}: {len(out.trajectories)} rows")
    for row, trajectory in enumerate(out.trajectories):
        outcomes = [result.outcome.value for result in trajectory.results]
        print(f"row {row}: {trajectory.status.value}, turns {outcomes}, completion {len(out.completion_ids[row])} tokens")
        for message in trajectory.messages:
            if message["role"] == "tool":
                frames = sum(item.get("type") == "image" for item in message["content"])
                print(f"    tool {message['name']} {message.get('arguments', {})} -> {frames} frames")


torch.set_default_dtype(torch.bfloat16 if SIZE == "3b" else torch.float32)
model_dir = tiny.build_tiny_model(WORK / f"model-{SIZE}", size=DIMS, seed=0)
torch.set_default_dtype(torch.float32)
data = make_dataset(WORK / "data", n_train=2, n_test=1, seed=0, tasks=("needle",))
config = load_config(
    Path("configs/quickstart_grpo.yaml"),
    [
        f"model.path={model_dir}",
        f"data.train_files=[{data.train_path}]",
        "data.eval_files=[]",
        f"output_dir={WORK / 'run'}",
        "data.prompt_template=timesearch",
        "search.enabled=true",
        "search.max_turns=2",
        "search.max_turn_tokens=48",
        "search.cache_fps=4",
        "search.frame_min_pixels=3136",
        "search.frame_max_pixels=3136",
        f"rollout.vllm.gpu_memory_utilization={os.environ['GPU_MEM']}",
        "rollout.vllm.max_model_len=8192",
    ],
)
adapter = load_adapter(str(model_dir))
encoder = PromptEncoder(adapter, config.data, search_turns=config.search.max_turns)
samples = load_samples(data.train_path)
prompts = [encoder.encode(s) for s in samples]
tools = SearchTools(config.search, config.data.video.reader)
local = LocalVLLM(str(model_dir), config.rollout.vllm, sleep=False)
failed = False

# 1. Turn 1 scripted to call the tool; turn 2 greedy from vLLM. vLLM's own prompt ids must be the trained ids.
first_turn = adapter.tokenizer("<think>look at the first second</think>" + CALL, add_special_tokens=False)["input_ids"]
engine = Recorded(VLLMRolloutEngine(ScriptedFirstTurn(local, first_turn + [adapter.eos_token_ids[-1]]), adapter))
loop = TurnLoop(engine, adapter, max_turns=2, max_turn_tokens=config.search.max_turn_tokens)
out = loop.generate(prompts, tools.environments(samples), SamplingParams(n=2, temperature=0.0))
show("scripted tool call, then vLLM", out)
turn_two = engine.prompts[1] if len(engine.prompts) > 1 else []
token_prompts = [{k: v for k, v in build_request(p).items() if k != "prompt"} for p in turn_two]
seen = local.llm.generate(token_prompts, vllm.SamplingParams(max_tokens=1, temperature=0.0), use_tqdm=False)
same = [list(o.prompt_token_ids) == p.input_ids.tolist() for o, p in zip(seen, turn_two)]
images = [int((p.input_ids == adapter.image_token_id).sum()) for p in turn_two]
print(f"turn-2 prompts: {len(turn_two)}, image tokens per prompt {images}, vLLM prompt ids == trained ids: {sum(same)}/{len(same)}")
if not turn_two or not all(same) or not all(images):
    print("FAILED: vLLM's turn-2 prompts are missing or differ from the trained ids", file=sys.stderr)
    failed = True

# 2. Every turn sampled by vLLM; rows that never search get the placeholder frame.
loop = TurnLoop(
    VLLMRolloutEngine(local, adapter), adapter, max_turns=2, max_turn_tokens=config.search.max_turn_tokens, placeholder_call=PLACEHOLDER_CALL
)
out = loop.generate(prompts, tools.environments(samples), SamplingParams(n=4, temperature=1.0))
show("sampled by vLLM", out)
frames = [0 if m.image_grid_thw is None else m.image_grid_thw.shape[0] for m in out.media]
print(f"tool frames per row: {frames}")
if not all(frames):
    print("FAILED: a row carries no tool frame although the placeholder result is on", file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
EOF
