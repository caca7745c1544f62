"""The end of a multi-process stage: one place that closes the process group, and the check of
whether a stage's outputs are complete when its launcher reports a failure.

A process group that is never destroyed can kill a rank whose work is done: at interpreter
shutdown gloo's worker threads may still hold work objects whose tensors have Python references,
and releasing them then aborts the process (``terminate called without an active exception``,
SIGABRT); with NCCL an undestroyed group can block its peers. torchrun then reports the whole stage
failed although its outputs are written. So every rank, after its last collective of a run that
succeeded, calls :func:`finish_process_group`. It is never called on the failure path: destroying a
group while another rank is still inside a collective can hang.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: The file a training stage writes last (rank 0, atomically, after the model): its completion record.
COMPLETION_RECORD = "metrics"


def _initialized():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def barrier() -> None:
    """Wait for every rank (nothing to wait for when not distributed)."""
    dist = _initialized()
    if dist is not None:
        dist.barrier()


def finish_process_group() -> None:
    """Close the default process group after a run that succeeded, on every rank.

    First a barrier, so no rank starts shutting down (where it may still die, see the module
    docstring) before rank 0 has written the stage's outputs; then the group is destroyed, which
    joins gloo's worker threads and releases NCCL's communicators while the interpreter is whole.
    A no-op when no group was initialised (one process).
    """
    dist = _initialized()
    if dist is None:
        return
    dist.barrier()
    dist.destroy_process_group()
    log.debug("process group destroyed")


def incomplete_outputs(outputs: dict[str, str]) -> list[str]:
    """The declared outputs of a training stage (``layout.outputs``) that are missing or unfinished;
    empty when the stage is complete.

    Complete means: every declared output exists (a folder with at least one file), and the
    completion record (``metrics.json``, which rank 0 writes atomically after the model, so it
    exists only once everything else is written) parses and counts at least one trained step.
    The launcher deletes the record before it starts the workers, so a record left by an earlier
    run never counts.
    """
    missing = []
    for name, path in outputs.items():
        p = Path(path)
        if not (p.is_file() or (p.is_dir() and any(q.is_file() for q in p.rglob("*")))):
            missing.append(name)
    record = outputs.get(COMPLETION_RECORD)
    if record is not None and COMPLETION_RECORD not in missing:
        try:
            steps = json.loads(Path(record).read_text()).get("train/steps", 0)
        except (OSError, ValueError, AttributeError):
            steps = 0
        if not steps:
            missing.append(COMPLETION_RECORD)
    return missing
