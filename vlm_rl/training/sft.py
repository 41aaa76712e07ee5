"""Supervised fine-tuning: masked next-token loss on the assistant turn, same data and config."""

from __future__ import annotations

from data_pipelines.prompts import sft_target
from data_pipelines.schema import Sample
from vlm_rl.config import RunConfig
from vlm_rl.models.adapter import CompletionMedia
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.rollout.turn_loop import TurnLoop
from vlm_rl.training.base import Trainer
from vlm_rl.training.frame_search import SearchTools


class SFTTrainer(Trainer):
    """Each step takes `trainer.prompts_per_step` records; the target is ``process + "\\n" + solution``, or a
    frame-search trace replayed through the tool (``search.enabled``, the SFT cold start of TimeSearch-R)."""

    name = "sft"

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.end_of_turn = self.adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")
        search = config.search
        self.search = SearchTools(search, config.data.video.reader) if search.enabled else None
        if self.search is not None:
            self.replay = TurnLoop(None, self.adapter, max_turns=search.max_turns, max_turn_tokens=search.max_turn_tokens)
            for sample in self.train_samples:
                _trace(sample)

    def target(self, sample: Sample) -> tuple[list[int], CompletionMedia | None]:
        """The assistant tokens to learn: ``process + "\n" + solution``, or with ``search.enabled`` the record's
        ``search_trace`` (its model turns, replayed through the real tool, tool turns masked)."""
        if self.search is None:
            ids = self.adapter.tokenizer(sft_target(sample), add_special_tokens=False)["input_ids"]
            return [*ids, self.end_of_turn], None
        try:
            ids, media, _ = self.replay.replay(_trace(sample), self.search.environments([sample])[0])
        except ValueError as err:
            raise ValueError(f"{sample.origin}: search_trace: {err}") from None
        return ids, media

    def step(self, step: int) -> dict[str, float]:
        cfg = self.config.trainer
        samples = self.sampler.take(cfg.prompts_per_step)
        targets, media = zip(*(self.target(s) for s in samples))
        total_tokens = sum(len(t) if m is None else int(m.loss_mask.sum()) for t, m in zip(targets, media))
        loss_sum = 0.0
        starts = range(0, len(samples), cfg.micro_batch_prompts)
        for start in starts:
            chunk = samples[start : start + cfg.micro_batch_prompts]
            prompts = [self.encoder.encode(s) for s in chunk]
            end = start + cfg.micro_batch_prompts
            batch = self.adapter.collate(prompts, 1, targets[start:end], None if self.search is None else media[start:end])
            with self.micro_batch(last=start == starts[-1]):
                logp = completion_logprobs(self.model, batch)[0]
                mask = batch.completion_mask.to(logp.device)
                loss = -(logp * mask).sum() / total_tokens
                self.accelerator.backward(loss)
            loss_sum += loss.item()
        grad_norm = self.clip_and_step()
        return {"loss": loss_sum, "grad_norm": grad_norm, "tokens": float(total_tokens)}


def _trace(sample: Sample) -> list[str]:
    """The record's ``search_trace``; ValueError naming the record when it is not a list of turn texts."""
    trace = sample.extra.get("search_trace")
    if not isinstance(trace, list) or not trace or not all(isinstance(turn, str) for turn in trace):
        raise ValueError(
            f"{sample.origin}: search SFT needs 'search_trace', a list of the model turns' texts "
            "(e.g. from `vlm-rl make-data --tasks needle`)"
        )
    return trace
