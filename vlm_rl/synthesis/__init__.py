"""The Syn-GRPO data server (`vlm-rl synth-server`) and the trainer's client of it.

The server makes new samples from submitted ones with a generator of `data_pipelines.synthesis` while the trainer
trains; `SynthesisClient` submits and fetches without ever making the trainer wait.
"""
