"""Model loading, processors, adapters and the built-in tiny Qwen2.5-VL."""
