"""Dotted overrides that make a GRPO or SFT run train in seconds on a CPU with the tiny model."""

TINY_RUN = [
    "trainer.steps=2",
    "trainer.prompts_per_step=2",
    "trainer.micro_batch_prompts=1",
    "trainer.lr=1e-3",
    "rollout.num_generations=4",
    "rollout.max_new_tokens=8",
    "trainer.log_every=1",
    "trainer.sample_every=1",
]
