"""The stage runner on the HF Trainer, its arguments, sampler and callbacks."""
