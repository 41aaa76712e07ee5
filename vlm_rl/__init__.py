"""vlm-rl: GRPO-family reinforcement learning for video and image vision-language models."""

__version__ = "0.1.0"
