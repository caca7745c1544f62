"""Trainer callbacks: tracking (loss, learning rate, throughput to the stage's MLflow run),
preemption (SIGTERM/SIGUSR1 -> checkpoint and exit 75) and test-only fault injection."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from transformers import TrainerCallback

from llava_core.exit_codes import PREEMPTED

log = logging.getLogger(__name__)


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


# ----------------------------------------------------------------------------- preemption
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(SystemExit):
    """Raised by the runner after a signal-triggered checkpoint; the process exits with 75."""

    def __init__(self, message: str):
        super().__init__(PREEMPTED)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PreemptionCallback(TrainerCallback):
    """Turn SIGTERM/SIGUSR1 (SLURM preemption or time limit) into "save a checkpoint and stop".

    The handler only sets a flag. At the next optimizer-step boundary every rank agrees on it (an
    all-reduce, so ranks that got the signal a moment apart stop at the same step), the Trainer
    saves ``checkpoint-<step>`` and leaves its loop; the runner then raises :class:`Preempted`
    instead of writing final outputs. Install the handlers early (before the model is built), so
    a signal during start-up is not lost; they are restored by :meth:`uninstall`.
    """

    def __init__(self, signals=PREEMPT_SIGNALS):
        self.signals = tuple(signals)
        self.received: str | None = None  # the first signal this process got
        self.stopped_at: int | None = None  # the step at which training was stopped
        self._previous: dict = {}

    def install(self) -> PreemptionCallback:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def _agreed(self, args) -> bool:
        flag = self.received is not None
        if getattr(args, "world_size", 1) > 1:
            import torch
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                device = args.device if dist.get_backend() == "nccl" else "cpu"
                t = torch.tensor([int(flag)], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                flag = bool(t.item())
        return flag

    def on_step_end(self, args, state, control, **kwargs):
        if self.stopped_at is None and self._agreed(args):
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
            log.warning("%s received: saving a checkpoint at step %d and stopping (exit %d)",
                        self.received or "a signal on another rank", state.global_step, PREEMPTED)
        return control


# ----------------------------------------------------------------------------- test hooks
def _this_rank_selected(env) -> bool:
    """``LLAVA_CORE_CRASH_RANKS`` (comma-separated ranks; unset: every rank) names this rank."""
    ranks = env.get("LLAVA_CORE_CRASH_RANKS")
    return not ranks or str(int(env.get("RANK") or 0)) in {r.strip() for r in ranks.split(",")}


class TestHooksCallback(TrainerCallback):
    """Test-only fault injection, switched on by environment variables (never set in production).

    ``LLAVA_CORE_CRASH_AFTER_STEP=N``: hard-exit (status 137, no cleanup, like ``kill -9``) at the
    end of optimizer step N. ``LLAVA_CORE_CRASH_AT_TRAIN_END=1``: the same once training has ended
    (after its last checkpoint, before the stage writes its outputs). ``LLAVA_CORE_CRASH_RANKS=R,..``
    limits both to those ranks. ``LLAVA_CORE_STEP_SLEEP=S``: sleep S seconds after each step, so a
    test can send a signal while training is still running. (``LLAVA_CORE_ABORT_AT_EXIT``: see
    :func:`abort_at_exit`.)
    """

    __test__ = False  # not a pytest class

    def __init__(self, crash_after_step: int | None, step_sleep: float, crash_at_end: bool = False):
        self.crash_after_step = crash_after_step
        self.step_sleep = step_sleep
        self.crash_at_end = crash_at_end

    @classmethod
    def from_env(cls, env=None) -> TestHooksCallback | None:
        env = os.environ if env is None else env
        crash = env.get("LLAVA_CORE_CRASH_AFTER_STEP") if _this_rank_selected(env) else None
        sleep = float(env.get("LLAVA_CORE_STEP_SLEEP") or 0)
        at_end = env.get("LLAVA_CORE_CRASH_AT_TRAIN_END") == "1" and _this_rank_selected(env)
        if not crash and not sleep and not at_end:
            return None
        return cls(int(crash) if crash else None, sleep, at_end)

    def on_step_end(self, args, state, control, **kwargs):
        if self.step_sleep:
            time.sleep(self.step_sleep)
        if self.crash_after_step is not None and state.global_step >= self.crash_after_step:
            log.warning("LLAVA_CORE_CRASH_AFTER_STEP=%d: exiting hard", self.crash_after_step)
            logging.shutdown()
            os._exit(137)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.crash_at_end:
            log.warning("LLAVA_CORE_CRASH_AT_TRAIN_END: exiting hard")
            logging.shutdown()
            os._exit(137)
        return control


def abort_at_exit(env=None) -> None:
    """Test-only: ``LLAVA_CORE_ABORT_AT_EXIT=R,..`` makes those ranks die of SIGABRT once the stage's
    work is done (outputs written, process group closed), as a rank that crashes at interpreter
    shutdown does (see llava_core/train/distributed.py)."""
    env = os.environ if env is None else env
    ranks = env.get("LLAVA_CORE_ABORT_AT_EXIT")
    if ranks and str(int(env.get("RANK") or 0)) in {r.strip() for r in ranks.split(",")}:
        log.warning("LLAVA_CORE_ABORT_AT_EXIT: aborting after the stage's work")
        logging.shutdown()
        os.abort()
