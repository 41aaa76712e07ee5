"""Syn-GRPO in the loop (arXiv 2511.19343; a reconstruction, docs/algorithms.md "Syn-GRPO"): the policy describes
new scenes for perception samples, `vlm-rl synth-server` draws them, the new samples join training, and each
description is trained once its sample's diversity is known.

Per step, through the method hooks:

* ``draw``: up to ``algo.syn.mix`` of each round's prompts become synthesised samples that have arrived, oldest
  description first (waiting at most ``algo.syn.wait_s`` for them);
* ``shape``: each synthesised group's diversity D (the variance of its ``algo.syn.diversity_reward`` rewards, accuracy
  by default) gives its description the
  reward D - b against the smoothed baseline b, which the round's diversities then move;
* ``plan``: rewarded descriptions join the loss as extra rows whose old policy is the one that wrote them (their
  stored log-probs, clipped ratio); descriptions older than ``algo.syn.expiry_steps`` are dropped;
* ``after_update``: unless enough undrawn descriptions wait already (a step's share of synthesised prompts) or
  ``algo.syn.max_pending`` would be passed, the updated policy writes G descriptions for each of
  ``algo.syn.sources_per_step`` perception samples, sent through a client that never blocks; while the server is
  down nothing is sent and training goes on with the static data (``syn/server_up`` says so).

Pending descriptions, the baseline, the client's cursor and the synthesised images not yet trained on are part of
every checkpoint; on resume the descriptions still waiting for their image are sent again (the first image that
comes for a description is used, later copies are ignored).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from data_pipelines.schema import Sample
from data_pipelines.synthesis.scene_prompt import SCENE_PROMPT, description_text, scene_objects
from vlm_rl.algorithms import DiversityBaseline, group_diversity
from vlm_rl.config import ConfigError, SynConfig
from vlm_rl.models.adapter import Batch, QwenVLAdapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rollout import RolloutEngine, SamplingParams
from vlm_rl.synthesis.client import SynthesisClient
from vlm_rl.training.checkpoint import load_json_state, save_json_state
from vlm_rl.training.groups import Groups, StepBatch
from vlm_rl.training.loss_parts import LossPart, group_micro_batches, stored_rows_part
from vlm_rl.training.methods import Method, MethodContext
from vlm_rl.training.sampler import PromptSampler
from vlm_rl.training.scene_descriptions import Description, DescriptionBook

STATE_FILE = "synthesis.json"
IMAGES = "synthetic"
"""Folder of the run (and of each checkpoint) that holds synthesised images not yet trained on."""
ORIGIN_PREFIX = "synthetic:"
WAIT_POLL_S = 0.01


class SceneSynthesis(Method):
    """Syn-GRPO's workflow (``algo.syn.enabled``); see the module docstring."""

    def __init__(
        self,
        config: SynConfig,
        *,
        sources: Sequence[Sample],
        encoder: PromptEncoder,
        adapter: QwenVLAdapter,
        engine: RolloutEngine,
        sampling: SamplingParams,
        logprobs: Callable[[Batch], torch.Tensor],
        images_dir: Path,
        seed: int,
        rows_per_part: int,
        groups_per_batch: int,
        step_share: int,
    ) -> None:
        self.config = config
        self.sources = {s.origin: s for s in sources}
        self.source_order = PromptSampler(list(sources), seed=seed + 7919)
        self.encoder = encoder
        self.adapter = adapter
        self.engine = engine
        self.params = dataclasses.replace(sampling, max_new_tokens=config.description_max_tokens)
        self.logprobs = logprobs
        self.images_dir = images_dir
        self.seed = seed
        self.rows_per_part = rows_per_part
        self.groups_per_batch = groups_per_batch
        self.step_share = step_share
        self.run_key = secrets.token_hex(4)
        self.book = DescriptionBook()
        self.baseline = DiversityBaseline(config.baseline_momentum)
        self.cursor = 0
        self.client: SynthesisClient | None = None
        self.step = 0
        self.drawn: dict[str, Description] = {}
        self.trained_images: list[Path] = []
        self.counts = {"lag": [], "ignored": 0, "invalid": 0}

    @classmethod
    def from_config(cls, ctx: MethodContext) -> SceneSynthesis | None:
        config = ctx.config.algo.syn
        if not config.enabled:
            return None
        if ctx.processes > 1:
            raise ConfigError("algo.syn.enabled runs in one process for now (its pending descriptions are per process)")
        sources = [s for s in ctx.train_samples if scene_objects(s)[0]]
        if not sources:
            raise ConfigError(
                "algo.syn.enabled needs perception training records: image samples with problem_type box or detection "
                "(e.g. vlm-rl make-data DIR --tasks rec)"
            )
        return cls(
            config, sources=sources, encoder=ctx.encoder, adapter=ctx.adapter, engine=ctx.engine, sampling=ctx.sampling,
            logprobs=ctx.logprobs, images_dir=Path(ctx.config.output_dir) / IMAGES, seed=ctx.seed,
            rows_per_part=ctx.rows_per_part, groups_per_batch=ctx.config.trainer.micro_batch_prompts,
            step_share=_share(config.mix, ctx.config.trainer.prompts_per_step),
        )

    def draw(self, samples: list[Sample], step: int) -> list[Sample]:
        self.step = step
        self.drawn = {}
        k = _share(self.config.mix, len(samples))
        if k == 0:
            return samples
        self._ingest()
        deadline = time.monotonic() + self.config.wait_s
        while not self.book.head_arrived(k) and time.monotonic() < deadline:
            time.sleep(WAIT_POLL_S)
            self._ingest()
        chosen = self.book.ready(k)
        synthetic = []
        for description in chosen:
            description.drawn = True
            sample = self._synthetic_sample(description)
            self.drawn[sample.origin] = description
            synthetic.append(sample)
        return samples[: len(samples) - len(synthetic)] + synthetic

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        scores = groups.rewards.scores[self.config.diversity_reward]
        diversity = group_diversity(scores.double(), groups.rollouts.group_ids)
        synthetic = [g for g, s in enumerate(groups.samples) if s.origin in self.drawn]
        mine = diversity[synthetic]
        rewards = self.baseline.rewards(mine)
        for g, d, r in zip(synthetic, mine.tolist(), rewards.tolist()):
            description = self.drawn[groups.samples[g].origin]
            description.diversity, description.reward = d, r
        stats = {
            "syn/diversity": float(diversity.mean()),
            "syn/zero_variance_groups": float((diversity == 0).double().mean()),
            "syn/synthetic_fraction": len(synthetic) / len(groups),
        }
        if synthetic:
            stats["syn/synthetic_diversity"] = float(mine.mean())
            stats["syn/description_reward"] = float(rewards.mean())
        self.baseline.update(diversity if self.config.baseline_groups == "all" else mine)
        if self.baseline.value is not None:
            stats["syn/baseline"] = self.baseline.value
        return groups, stats

    def plan(self, batch: StepBatch, groups: list[int]) -> tuple[list[int], list[LossPart], dict[str, float]]:
        rewarded = self.book.pop_rewarded()
        self.trained_images = [self.images_dir / d.image for d in rewarded]
        expired = self.book.expire(self.step, self.config.expiry_steps)
        for description in expired:
            if description.image is not None:
                (self.images_dir / description.image).unlink(missing_ok=True)
        status = self._client().status()
        lag = self.counts["lag"]
        stats = {
            "syn/description_rows": float(len(rewarded)),
            "syn/expired": float(len(expired)),
            "syn/pending": float(len(self.book)),
            "syn/server_up": float(status.state == "up"),
            "syn/ignored_samples": float(self.counts["ignored"]),
            "syn/invalid_samples": float(self.counts["invalid"]),
            "syn/jobs_not_taken": float(status.refused + status.dropped),
        }
        if status.queue_depth is not None:
            stats["syn/queue_depth"] = float(status.queue_depth)
        if lag:
            stats["syn/lag_steps"] = sum(lag) / len(lag)
        if rewarded:
            stats["syn/description_advantage"] = self.config.reward_scale * sum(d.reward for d in rewarded) / len(rewarded)
        self.counts = {"lag": [], "ignored": 0, "invalid": 0}
        return groups, self._parts(rewarded), stats

    def after_update(self, step: int, batch: StepBatch, trained: list[tuple[LossPart, torch.Tensor]]) -> dict[str, float]:
        for path in self.trained_images:
            path.unlink(missing_ok=True)
        self.trained_images = []
        return {"syn/described": float(self._describe(step))}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def save(self, directory: Path) -> None:
        kept = directory / IMAGES
        for description in self.book.items.values():
            if description.image is not None:
                kept.mkdir(exist_ok=True)
                shutil.copyfile(self.images_dir / description.image, kept / description.image)
        cursor = self.client.cursor if self.client is not None else self.cursor
        state = {
            "run_key": self.run_key, "cursor": cursor, "baseline": self.baseline.value,
            "sources": self.source_order.state_dict(), "descriptions": self.book.state_dict(),
        }
        save_json_state(directory, STATE_FILE, state)

    def load(self, directory: Path) -> None:
        state = load_json_state(directory, STATE_FILE, "algo.syn.enabled")
        self.run_key, self.cursor, self.baseline.value = state["run_key"], state["cursor"], state["baseline"]
        self.source_order.load_state_dict(state["sources"])
        self.book.load_state_dict(state["descriptions"])
        for description in self.book.items.values():
            if description.source not in self.sources:
                raise ConfigError(
                    f"{directory}: the pending description {description.key} was written for {description.source}, "
                    "which is not among this run's training records; resume with the same data.train_files"
                )
            if description.image is not None:
                self.images_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(directory / IMAGES / description.image, self.images_dir / description.image)

    def _client(self) -> SynthesisClient:
        """The client, started on first use from the restored cursor; descriptions still waiting for their image
        (after a resume) are sent again."""
        if self.client is None:
            config = self.config
            self.client = SynthesisClient(
                config.server, token_file=config.token_file, cursor=self.cursor, poll_s=config.poll_s, images=config.images
            )
            for description in self.book.items.values():
                if description.image is None:
                    self._submit(description, self._source_image(description.source))
        return self.client

    def _source_image(self, origin: str) -> Image.Image:
        with Image.open(self.sources[origin].media_path) as image:
            return image.convert("RGB")

    def _submit(self, description: Description, image: Image.Image) -> bool:
        """Queue the job of `description`, whose source image is `image`; False when the client's outbox is full."""
        boxes, labels = scene_objects(self.sources[description.source])
        return self._client().submit(image, boxes, labels, description.text, seed=description.seed, source_id=description.key)

    def _ingest(self) -> None:
        """Take what the client has downloaded: each image that belongs to a waiting description is written into
        the run's folder; the rest (another run's, a second copy, one that changed its boxes) is counted."""
        for sample in self._client().fetch():
            description = self.book.items.get(sample.parent_id)
            if description is None or description.image is not None:
                self.counts["ignored"] += 1
                continue
            source = self.sources[description.source]
            if list(sample.image.size) != list(source.extra["image_size"]) or sample.boxes != scene_objects(source)[0]:
                self.counts["invalid"] += 1
                continue
            self.images_dir.mkdir(parents=True, exist_ok=True)
            name = f"{description.key}.png"
            partial = self.images_dir / f".{name}.partial"
            sample.image.save(partial, format="PNG")
            os.replace(partial, self.images_dir / name)
            self.book.arrive(description.key, name, self.step)
            self.counts["lag"].append(self.step - description.step)

    def _synthetic_sample(self, description: Description) -> Sample:
        source = self.sources[description.source]
        return dataclasses.replace(
            source,
            sample_id=f"{source.sample_id}~{description.key}",
            media_path=self.images_dir / description.image,
            origin=ORIGIN_PREFIX + description.key,
            extra={**source.extra, "parent": source.origin, "description": description.text},
        )

    def _describe(self, step: int) -> int:
        """Write and send this step's descriptions; how many were sent."""
        client = self._client()
        count, group = self.config.sources_per_step, self.params.n
        enough = len(self.book.undrawn()) >= self.step_share
        if count == 0 or enough or len(self.book) + count * group > self.config.max_pending or client.state in ("down", "unauthorized"):
            return 0
        sources = self.source_order.take(count)
        prompts = [self.encoder.encode_instruction(s, SCENE_PROMPT) for s in sources]
        rollouts = self.engine.generate(prompts, self.params)
        logps: dict[int, list[float]] = {}
        for batch, rows in group_micro_batches(
            self.adapter, prompts, rollouts, group_size=group, groups_per_batch=self.groups_per_batch, mask_truncated=False
        ):
            values = self.logprobs(batch).cpu()
            for local, row in enumerate(rows.tolist()):
                logps[row] = values[local, : len(rollouts.completion_ids[row])].tolist()
        images = [self._source_image(s.origin) for s in sources]
        sent = 0
        for row, ids in enumerate(rollouts.completion_ids):
            i, k = divmod(row, group)
            description = Description(
                key=f"{self.run_key}-{step}-{i}-{k}", source=sources[i].origin, step=step,
                seed=(self.seed * 1_000_003 + step * 8191 + row) % 2**32, text=description_text(rollouts.texts[row]),
                completion_ids=list(ids), old_logps=logps[row],
            )
            if self._submit(description, images[i]):
                self.book.add(description)
                sent += 1
        return sent

    def _parts(self, rewarded: list[Description]) -> list[LossPart]:
        """Loss micro-batches of the rewarded descriptions: each row its own group, advantage scale * (D - b)."""
        parts = []
        for start in range(0, len(rewarded), self.rows_per_part):
            chunk = rewarded[start : start + self.rows_per_part]
            prompts = [self.encoder.encode_instruction(self.sources[d.source], SCENE_PROMPT) for d in chunk]
            advantages = torch.tensor([self.config.reward_scale * d.reward for d in chunk])
            parts.append(stored_rows_part(
                self.adapter, prompts, [d.completion_ids for d in chunk], [d.old_logps for d in chunk], advantages,
                torch.tensor([d.diversity for d in chunk]), start,
            ))
        return parts


def _share(mix: float, prompts: int) -> int:
    """How many of a round's `prompts` are synthesised samples: `mix` of them, rounded down."""
    return int(mix * prompts + 1e-9)
