"""Trainer callbacks: report loss, learning rate and throughput to the stage's MLflow run."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class TrackingCallback(TrainerCallback):
    """Forward the Trainer's logs to :class:`llava_core.tracking.StageRun` under ``train/*``."""

    def __init__(self, run, tokens_counter=None):
        self.run = run
        self.tokens_counter = tokens_counter
        self._t0 = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        metrics = {}
        for key, value in logs.items():
            if not isinstance(value, (int, float)):
                continue
            name = {"loss": "train/loss", "learning_rate": "train/learning_rate", "grad_norm": "train/grad_norm",
                    "epoch": "train/epoch"}.get(key, f"train/{key}")
            metrics[name] = value
        if self._t0 and state.global_step:
            elapsed = time.time() - self._t0
            metrics["train/steps_per_second_running"] = state.global_step / max(elapsed, 1e-9)
            if self.tokens_counter is not None:
                metrics["train/tokens_per_second"] = self.tokens_counter() / max(elapsed, 1e-9)
        self.run.log_metrics(metrics, step=state.global_step)
