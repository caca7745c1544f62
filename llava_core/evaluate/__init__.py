"""Evaluation: the 12 LLaVA-1.5 benchmarks (loading, scoring) and the paper's reference numbers."""
