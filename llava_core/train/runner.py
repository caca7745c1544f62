"""Run one training stage, top to bottom: build, freeze, data, HF Trainer, save.

Stage 1 (``pretrain``) trains the fresh projector and writes ``mm_projector.bin``; stage 2
(``finetune``) starts from it and trains the LLM (full or LoRA) plus the projector, writing a
transformers LLaVA checkpoint (LoRA merged in). A killed stage resumes from its last Trainer
checkpoint under ``<out>/checkpoints`` (the newest complete one) and, with the same seed,
reaches the same weights as an uninterrupted run. On SIGTERM/SIGUSR1 a stage saves a checkpoint
at the next step boundary and exits with status 75 (see ``llava_core.exit_codes.PREEMPTED``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from llava_core.data.dataset import Collator, SupervisedDataset
from llava_core.data.index import open_training_index
from llava_core.exit_codes import PREEMPTED
from llava_core.io import write_json
from llava_core.model.build import (
    build_llava,
    freeze_identity_layer,
    load_projector,
    save_projector,
    set_trainable,
)
from llava_core.plan.layout import default_dir, outputs
from llava_core.train.arguments import training_arguments
from llava_core.train.callbacks import (
    Preempted,
    PreemptionCallback,
    TestHooksCallback,
    TrackingCallback,
)
from llava_core.train.distributed import finish_process_group
from llava_core.train.sampler import ModalityLengthSampler

#: Writes a trained model into a stage's output folder: ``(model, parts, out_dir) -> None``.
SaveOutputs = Callable[[Any, Any, Path], None]

log = logging.getLogger(__name__)


class LlavaTrainer(Trainer):
    """HF Trainer plus: the modality-grouped sampler, a projector learning rate, truncation counts,
    and the loss weighting of the original run.

    ``loss_weighting="rank_mean"`` (the original LLaVA run, trained with an older transformers):
    the model returns the mean loss over the supervised tokens of its own micro-batch, the Trainer
    divides it by the accumulation steps, and DDP/DeepSpeed average gradients over ranks, so every
    micro-batch of the global batch weighs the same, whatever its token count. transformers 5
    instead counts the supervised tokens of the whole global batch (``num_items_in_batch``, summed
    over accumulation steps and, with ``average_tokens_across_devices``, gathered over ranks),
    passes it to the model, which then returns ``sum / count``, and multiplies that by the world
    size to undo the gradient averaging: every token of the global batch weighs the same. That is
    ``loss_weighting="global_token"`` (the Trainer's own behaviour, kept as is). The Trainer does
    all of this only for models that accept loss kwargs (``model_accepts_loss_kwargs``), so
    rank_mean turns that off: no token count is computed or passed, no world-size factor is applied,
    and the loss is marked as not yet scaled for gradient accumulation.
    """

    def __init__(self, *args, projector_lr: float | None = None, group_by_modality: bool = False,
                 loss_weighting: str = "rank_mean", **kwargs):
        super().__init__(*args, **kwargs)
        if loss_weighting not in ("rank_mean", "global_token"):
            raise ValueError(f"loss_weighting={loss_weighting!r}: expected rank_mean or global_token")
        if loss_weighting == "rank_mean":
            self.model_accepts_loss_kwargs = False
            self.loss_is_scaled_for_ga = False
        self.loss_weighting = loss_weighting
        self.projector_lr = projector_lr
        self.group_by_modality = group_by_modality
        self.num_truncated = 0
        self.num_tokens = 0
        self._modality_sampler: ModalityLengthSampler | None = None

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.group_by_modality:
            return super()._get_train_sampler(dataset)
        a = self.args
        self._modality_sampler = ModalityLengthSampler(
            dataset.modality_lengths(), per_device_batch=a.per_device_train_batch_size, world_size=a.world_size,
            grad_accum=a.gradient_accumulation_steps, seed=a.seed)
        return self._modality_sampler

    def _run_epoch(self, *args, **kwargs):
        # accelerate forwards set_epoch to the sampler, except through the SkipBatchSampler +
        # BatchSamplerShard pair of a resumed multi-process run; set it here for every case.
        if self._modality_sampler is not None and "epoch" in kwargs:
            self._modality_sampler.set_epoch(kwargs["epoch"])
        return super()._run_epoch(*args, **kwargs)

    # -- checkpoints: the HF Trainer saves through save_pretrained, which writes LLaVA's original
    # key names (language_model.model.*), but resumes with a plain load_state_dict(strict=False),
    # which then matches nothing and silently keeps the fresh weights. These two methods make a
    # resumed run start from the checkpoint's weights (and a LoRA run keep its trained projector).
    def _save(self, output_dir=None, state_dict=None):
        super()._save(output_dir, state_dict)
        if _is_peft(self.model) and self.args.should_save:
            from safetensors.torch import save_file

            # Under ZeRO-3 only ``state_dict`` (gathered by the Trainer) holds whole tensors.
            extra = {n: (state_dict or {}).get(n, p).detach().cpu().contiguous()
                     for n, p in self.model.named_parameters() if p.requires_grad and "lora_" not in n}
            if extra:
                save_file(extra, os.path.join(output_dir or self.args.output_dir, NON_LORA_CHECKPOINT))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = model if model is not None else self.model
        ckpt = Path(resume_from_checkpoint)
        if _is_peft(model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            if (ckpt / NON_LORA_CHECKPOINT).is_file():
                from safetensors.torch import load_file

                result = model.load_state_dict(load_file(ckpt / NON_LORA_CHECKPOINT), strict=False)
                if result.unexpected_keys:
                    raise RuntimeError(f"{ckpt / NON_LORA_CHECKPOINT}: unexpected keys {result.unexpected_keys[:5]}")
            return
        if not (ckpt / "model.safetensors").is_file():
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        from safetensors.torch import load_file

        saved = load_file(ckpt / "model.safetensors", device="cpu")
        native = _to_module_keys(model, saved)
        result = model.load_state_dict(native, strict=False)
        tied = getattr(model, "_tied_weights_keys", None) or {}
        missing = [k for k in result.missing_keys if k not in tied]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"checkpoint {ckpt} does not fit the model: missing {missing[:5]}, "
                               f"unexpected {list(result.unexpected_keys)[:5]}")
        log.info("restored %d tensors from %s", len(native), ckpt)

    def create_optimizer(self, model=None):
        if self.projector_lr is None or self.optimizer is not None:
            return super().create_optimizer(model) if model is not None else super().create_optimizer()
        # Upstream's parameter groups: the projector gets its own learning rate (LoRA recipe).
        opt_model = self.model
        proj, rest = [], []
        for name, p in opt_model.named_parameters():
            if p.requires_grad:
                (proj if "multi_modal_projector" in name else rest).append(p)
        groups = [{"params": rest, "weight_decay": self.args.weight_decay},
                  {"params": proj, "weight_decay": self.args.weight_decay, "lr": self.projector_lr}]
        cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, opt_model)
        self.optimizer = cls(groups, **kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        self.num_truncated += int(inputs.pop("num_truncated", 0))
        self.num_tokens += int(inputs["attention_mask"].sum())
        return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)


NON_LORA_CHECKPOINT = "non_lora_trainables.safetensors"  # in a LoRA run's Trainer checkpoints


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _to_module_keys(model, saved: dict) -> dict:
    """Rename a state dict written by ``save_pretrained`` (original key names) to ``model``'s own names."""
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:  # a transformers without key conversions saves the module's own names
        return saved
    out = {}
    for name, tensor in model.state_dict().items():
        for saved_name in revert_weight_conversion(model, {name: tensor}):
            if saved_name in saved:
                out[name] = saved.pop(saved_name)
    out.update(saved)  # whatever is left is reported as unexpected by load_state_dict
    return out


def _apply_lora(model, lora_cfg):
    from peft import get_peft_model

    from llava_core.train.lora import lora_config

    model = get_peft_model(model, lora_config(lora_cfg))
    for name, p in model.named_parameters():
        if "multi_modal_projector" in name:
            p.requires_grad_(True)
    freeze_identity_layer(model)
    return model


def train_stage(cfg, stage: str, *, data_dir: Path, out_dir: Path, run, save_outputs: SaveOutputs,
                init_dir: Path | None = None, records_path: Path | None = None) -> dict:
    """Train ``stage`` ("pretrain" or "finetune") and write its outputs into ``out_dir``.

    ``save_outputs(model, parts, out_dir)`` writes the trained model in the stage's output form
    (:func:`save_stage1` for stage 1, ``llava_core.train.finetune_outputs.save_stage2`` for stage 2);
    the caller picks it, so stage 1's code never imports stage 2's checkpoint writer.
    """
    st = cfg[stage]
    preempt = PreemptionCallback().install()  # early: a signal while the model loads is kept
    try:
        return _train_stage(cfg, stage, st, preempt, data_dir=data_dir, out_dir=out_dir, run=run,
                            init_dir=init_dir, records_path=records_path, save_outputs=save_outputs)
    finally:
        preempt.uninstall()


def reset_stale_checkpoints(ckpt_dir: Path, stage_cfg: dict) -> bool:
    """Resume only checkpoints written by the same stage configuration.

    A stage reruns because its config changed (say, the learning rate): its old checkpoints
    belong to the previous run and must not be resumed. They are removed, and the new config's
    digest is recorded beside the new ones. Returns True if old checkpoints were removed.
    """
    from llava_core.config.compose import config_hash

    digest = config_hash(stage_cfg)
    marker = ckpt_dir / "stage_config.json"
    stale = False
    if ckpt_dir.is_dir() and any(ckpt_dir.iterdir()):
        recorded = json.loads(marker.read_text()).get("hash") if marker.is_file() else None
        if recorded != digest:
            log.warning("removing checkpoints of another configuration of this stage in %s", ckpt_dir)
            shutil.rmtree(ckpt_dir)
            stale = True
    write_json(marker, {"hash": digest, "config": stage_cfg})
    return stale


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` whose ``trainer_state.json`` exists (the Trainer writes it last,
    and deletes older checkpoints only after it): a job killed while saving leaves a partial
    folder, which is skipped so the rerun resumes from the previous complete one."""
    if not ckpt_dir.is_dir():
        return None
    found = []
    for d in ckpt_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = d.name.rsplit("-", 1)[1]
        if d.is_dir() and step.isdigit():
            found.append((int(step), d))
    for _, d in sorted(found, reverse=True):
        if (d / "trainer_state.json").is_file():
            return str(d)
        log.warning("skipping incomplete checkpoint %s (no trainer_state.json)", d)
    return None


def _train_stage(cfg, stage: str, st, preempt: PreemptionCallback, *, data_dir: Path, out_dir: Path, run,
                 init_dir: Path | None, records_path: Path | None, save_outputs: SaveOutputs) -> dict:
    from llava_core.config.compose import stage_seed

    seed = stage_seed(cfg, stage)
    set_seed(seed)
    on_gpu = torch.cuda.is_available()
    parts = build_llava(cfg.model, data_dir)
    model, tokenizer = parts.model, parts.tokenizer
    if stage == "finetune":
        if init_dir is None:
            raise ValueError("stage 2 needs the stage-1 projector (--init DIR with mm_projector.bin)")
        load_projector(model, Path(init_dir) / "mm_projector.bin")
    counts = set_trainable(model, st.tune)
    if st.tune == "lora":
        model = _apply_lora(model, st.lora)
        counts = {**counts, "params/trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    log.info("%s: trainable parameters %s", stage, json.dumps(counts))
    run.log_metrics(counts)

    # The filter stage's memory-mapped index (ranks of a node share its pages); a JSON records
    # file passed as records_path is read into an in-memory index instead.
    records = open_training_index(records_path or outputs("filter", default_dir(str(data_dir), "filter"))[f"{stage}_index"])
    image_root = data_dir / (cfg.data.pretrain_images if stage == "pretrain" else cfg.data.finetune_images)
    dataset = SupervisedDataset(records, image_root, template=st.template,
                                aspect=st.image_aspect_ratio, tokenizer=tokenizer,
                                image_processor=parts.image_processor, num_image_tokens=parts.num_image_tokens,
                                max_length=cfg.model.model_max_length, truncation=st.truncation)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ckpt_dir = out_dir / "checkpoints"
    args = TrainingArguments(**training_arguments(st, world_size=world, output_dir=ckpt_dir, seed=seed,
                                                  on_gpu=on_gpu))
    if st.gradient_checkpointing:
        model.enable_input_require_grads()
    trainer = LlavaTrainer(model=model, args=args, train_dataset=dataset,
                           data_collator=Collator(tokenizer.pad_token_id),
                           projector_lr=st.projector_lr, group_by_modality=st.group_by_modality_length,
                           loss_weighting=st.loss_weighting)
    trainer.add_callback(TrackingCallback(run, tokens_counter=lambda: trainer.num_tokens))
    trainer.add_callback(preempt)
    hooks = TestHooksCallback.from_env()
    if hooks is not None:
        trainer.add_callback(hooks)
    resume = last_complete_checkpoint(ckpt_dir)
    if resume and finished_checkpoint(resume):
        # A forced or triggered rerun of a finished stage trains afresh: resuming would train 0 steps
        # and replace the stage's metrics with those of an empty run.
        log.info("%s: %s ends a finished run; training afresh", stage, resume)
        if trainer.is_world_process_zero():
            remove_checkpoints(ckpt_dir)
        resume = None
    if trainer.is_world_process_zero():
        (out_dir / PREEMPTED_MARKER).unlink(missing_ok=True)
    if resume:
        log.info("resuming %s from %s", stage, resume)
    result = trainer.train(resume_from_checkpoint=resume)
    if preempt.stopped_at is not None and trainer.state.global_step < trainer.state.max_steps:
        _preempted(trainer, run, preempt, stage, out_dir, resumed=resume is not None)

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {"train/final_loss": losses[-1] if losses else float("nan"),
               "train/first_loss": losses[0] if losses else float("nan"),
               "train/steps": trainer.state.global_step,
               "train/truncated_samples": trainer.num_truncated,
               "train/samples_per_second": result.metrics.get("train_samples_per_second", 0.0),
               "train/runtime_seconds": result.metrics.get("train_runtime", 0.0),
               "train/resumed": int(resume is not None),
               # micro-batches of this rank (0) without an image, which ran the blank image (training_forward.py)
               "train/blank_image_batches": getattr(parts.model.model, "blank_image_batches", 0),
               "train/world_size": args.world_size,
               "train/gradient_accumulation_steps": args.gradient_accumulation_steps,
               "train/global_batch_size": args.per_device_train_batch_size * args.world_size
               * args.gradient_accumulation_steps}
    run.log_metrics(summary, step=trainer.state.global_step)
    if trainer.num_truncated:
        log.warning("%s: %d samples were truncated to model_max_length=%d", stage, trainer.num_truncated,
                    cfg.model.model_max_length)
    with _gathered_parameters(trainer):  # every rank: under ZeRO-3 this is a collective
        if trainer.is_world_process_zero():
            save_outputs(trainer.model, parts, out_dir)
            # history: every logged step's loss and learning rate (the report's training curves)
            history = [{"step": h["step"], "loss": h["loss"], "learning_rate": h.get("learning_rate")}
                       for h in trainer.state.log_history if "loss" in h]
            write_json(out_dir / "metrics.json", {**summary, **counts, "loss_history": losses, "history": history})
            # Checkpoints only serve to resume an unfinished run (a 13B ZeRO-3 one holds ~150 GB of
            # optimizer state): the stage's outputs are written, so they go (a rerun with
            # keep_checkpoints still trains afresh: the last one is finished).
            if not st.keep_checkpoints:
                remove_checkpoints(ckpt_dir)
    # Every rank, after the last collective: no rank shuts down before rank 0's outputs are written.
    finish_process_group()
    return summary


def finished_checkpoint(path: str | Path) -> bool:
    """Whether a checkpoint is the last step of its run (``global_step`` reached ``max_steps``)."""
    try:
        state = json.loads((Path(path) / "trainer_state.json").read_text())
    except FileNotFoundError:  # rank 0 is removing it: it was finished
        return True
    return 0 < state.get("max_steps", 0) <= state.get("global_step", 0)


def remove_checkpoints(ckpt_dir: Path) -> None:
    """Delete the ``checkpoint-N`` folders (the stage-config marker beside them stays)."""
    for d in Path(ckpt_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        shutil.rmtree(d, ignore_errors=True)


def _gathered_parameters(trainer):
    """A context in which ``trainer.model`` holds all its weights, entered by every rank.

    ZeRO-3 leaves each rank a shard of every parameter (small ones, under the persistence
    threshold, excepted), so saving the module as is would write empty tensors. The whole model is
    gathered on every rank at once (the 16-bit weights of a 13B model are 26 GB), and nothing
    written into it is scattered back (``modifier_rank=None``): a LoRA merge stays on rank 0.
    """
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if not (trainer.is_deepspeed_enabled and is_deepspeed_zero3_enabled()):
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(trainer.model.parameters()), modifier_rank=None)


PREEMPTED_MARKER = "preempted.json"  # written beside the outputs; read by the launcher (launch.py)


def _preempted(trainer, run, preempt: PreemptionCallback, stage: str, out_dir: Path, *, resumed: bool) -> None:
    """After a signal-triggered checkpoint: record it, wait for every rank, exit with status 75."""
    step = trainer.state.global_step
    if trainer.is_world_process_zero():
        write_json(out_dir / PREEMPTED_MARKER, {"stage": stage, "signal": preempt.received, "step": step,
                                                "max_steps": trainer.state.max_steps,
                                                "checkpoint": last_complete_checkpoint(Path(trainer.args.output_dir))})
    run.log_metrics({"train/preempted": 1, "train/preempted_at_step": step, "train/resumed": int(resumed)},
                    step=step)
    # Every rank agreed to stop (PreemptionCallback) and reaches this point: no rank may exit (and get
    # its peers killed) while another still writes, and the group is closed before the exit.
    finish_process_group()
    msg = (f"{stage}: {preempt.received or 'signal on another rank'} -> checkpoint at step {step} "
           f"of {trainer.state.max_steps} in {trainer.args.output_dir}; rerun to resume")
    log.warning("%s (exit %d)", msg, PREEMPTED)
    raise Preempted(msg)


def save_stage1(model, parts, out_dir: Path) -> None:
    """Stage 1's output: the trained projector (``mm_projector.bin``, the original's file)."""
    save_projector(model, Path(outputs("pretrain", str(out_dir))["projector"]))
