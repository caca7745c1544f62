"""Building LLaVA from a vision tower and an LLM, the tiny base models, checkpoint formats."""
