"""The Gradio demo (`vlm-rl demo`): answer, sample a group, compare checkpoints, browse runs.

Only `vlm_rl.demo.app` imports gradio; the other modules are plain helpers that the tests use directly.
"""
