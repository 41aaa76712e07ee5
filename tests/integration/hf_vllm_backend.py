"""A stand-in for vLLM on CPU machines: the backend interface (`generate`, `load_weights`) run with transformers.

It does with a request what vLLM's Qwen2.5-VL input processor does: the HF processor on the prompt
text, the multi-modal data and the request's processor kwargs (a video as a ``(frames, metadata)``
pair: uint8 ``[T, H, W, 3]`` numpy frames, the metadata as ``video_metadata``; images as PIL
images); then it samples with the HF engine. It records every request
and every weight push, so tests can check what crossed the wire.
"""

from __future__ import annotations

from typing import Any

from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rollout import HFRolloutEngine, SamplingParams


def process_request(adapter: QwenVLAdapter, request: dict[str, Any]) -> PromptInputs:
    media = request.get("multi_modal_data", {})
    kwargs: dict[str, Any] = {"text": [request["prompt"]], "return_tensors": "pt", **request.get("mm_processor_kwargs", {})}
    if "video" in media:
        frames, metadata = media["video"]
        kwargs["videos"] = [frames]
        kwargs["video_metadata"] = [{k: metadata[k] for k in ("fps", "total_num_frames", "frames_indices")}]
    if "image" in media:
        kwargs["images"] = list(media["image"])
    return adapter.from_processor_output(adapter.processor(**kwargs))


class HFBackend:
    def __init__(self, model, adapter: QwenVLAdapter) -> None:
        self.model = model
        self.adapter = adapter
        self.requests: list[dict[str, Any]] = []
        self.pushes: list[list[str]] = []

    def generate(self, requests: list[dict[str, Any]], sampling: dict[str, Any]) -> list[list[tuple[list[int], str]]]:
        self.requests.extend(requests)
        assert set(sampling["logit_bias"]) == set(self.adapter.blocked_token_ids), "vision tokens must be blocked"
        params = SamplingParams(
            n=sampling["n"],
            max_new_tokens=sampling["max_tokens"],
            temperature=sampling["temperature"],
            top_p=sampling["top_p"],
            top_k=max(0, sampling["top_k"]),
        )
        out = HFRolloutEngine(self.model, self.adapter).generate([process_request(self.adapter, r) for r in requests], params)
        n = params.n
        rows = list(zip(out.completion_ids, out.truncated))
        return [[(ids, "length" if cut else "stop") for ids, cut in rows[i * n : (i + 1) * n]] for i in range(len(requests))]

    def load_weights(self, named) -> int:
        state = {name: tensor.clone() for name, tensor in named}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        assert not unexpected, f"pushed names the model does not have: {unexpected[:5]}"
        self.pushes.append(sorted(state))
        return len(state)
