"""Everything about samples that does not need a model: records, readers, prompts, synthetic data."""
