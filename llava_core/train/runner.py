"""Run one training stage, top to bottom: build, freeze, data, HF Trainer, save.

Stage 1 (``pretrain``) trains the fresh projector and writes ``mm_projector.bin``; stage 2
(``finetune``) starts from it and trains the LLM (full or LoRA) plus the projector, writing a
transformers LLaVA checkpoint (LoRA merged in). A killed stage resumes from its last Trainer
checkpoint under ``<out>/checkpoints``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from llava_core.data.dataset import Collator, SupervisedDataset
from llava_core.data.formats import read_llava_records
from llava_core.io import atomic_dir, write_json
from llava_core.model.build import build_llava, load_projector, save_projector, set_trainable
from llava_core.train.arguments import training_arguments
from llava_core.train.callbacks import TrackingCallback
from llava_core.train.sampler import ModalityLengthSampler

log = logging.getLogger(__name__)


class LlavaTrainer(Trainer):
    """HF Trainer plus: the modality-grouped sampler, a projector learning rate, truncation counts."""

    def __init__(self, *args, projector_lr: float | None = None, group_by_modality: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.projector_lr = projector_lr
        self.group_by_modality = group_by_modality
        self.num_truncated = 0
        self.num_tokens = 0

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.group_by_modality:
            return super()._get_train_sampler(dataset)
        a = self.args
        return ModalityLengthSampler(dataset.modality_lengths(), per_device_batch=a.per_device_train_batch_size,
                                     world_size=a.world_size, grad_accum=a.gradient_accumulation_steps, seed=a.seed)

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


def _apply_lora(model, lora_cfg):
    from peft import LoraConfig, get_peft_model

    # Only the LLM's linear layers: a bare ["q_proj", ...] list would also match CLIP attention.
    pattern = r".*language_model.*\.(" + "|".join(lora_cfg.target_modules) + r")$"
    peft_cfg = LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
                          bias=lora_cfg.bias, target_modules=pattern, task_type="CAUSAL_LM")
    model = get_peft_model(model, peft_cfg)
    for name, p in model.named_parameters():
        if "multi_modal_projector" in name:
            p.requires_grad_(True)
    return model


def train_stage(cfg, stage: str, *, data_dir: Path, out_dir: Path, run, init_dir: Path | None = None,
                records_path: Path | None = None) -> dict:
    """Train ``stage`` ("pretrain" or "finetune") and write its outputs into ``out_dir``."""
    st = cfg[stage]
    set_seed(cfg.seed)
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

    records_path = records_path or data_dir / "filtered" / f"{stage}.json"
    image_root = data_dir / (cfg.data.pretrain_images if stage == "pretrain" else cfg.data.finetune_images)
    dataset = SupervisedDataset(read_llava_records(records_path), image_root, template=st.template,
                                aspect=st.image_aspect_ratio, tokenizer=tokenizer,
                                image_processor=parts.image_processor, num_image_tokens=parts.num_image_tokens,
                                max_length=cfg.model.model_max_length)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ckpt_dir = out_dir / "checkpoints"
    args = TrainingArguments(**training_arguments(st, world_size=world, output_dir=ckpt_dir, seed=cfg.seed,
                                                  on_gpu=on_gpu))
    if st.gradient_checkpointing:
        model.enable_input_require_grads()
    trainer = LlavaTrainer(model=model, args=args, train_dataset=dataset,
                           data_collator=Collator(tokenizer.pad_token_id),
                           projector_lr=st.projector_lr, group_by_modality=st.group_by_modality_length)
    trainer.add_callback(TrackingCallback(run, tokens_counter=lambda: trainer.num_tokens))
    resume = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if resume:
        log.info("resuming %s from %s", stage, resume)
    result = trainer.train(resume_from_checkpoint=resume)

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {"train/final_loss": losses[-1] if losses else float("nan"),
               "train/first_loss": losses[0] if losses else float("nan"),
               "train/steps": trainer.state.global_step,
               "train/truncated_samples": trainer.num_truncated,
               "train/samples_per_second": result.metrics.get("train_samples_per_second", 0.0),
               "train/runtime_seconds": result.metrics.get("train_runtime", 0.0),
               "train/resumed": int(resume is not None)}
    run.log_metrics(summary, step=trainer.state.global_step)
    if trainer.num_truncated:
        log.warning("%s: %d samples were truncated to model_max_length=%d", stage, trainer.num_truncated,
                    cfg.model.model_max_length)
    if trainer.is_world_process_zero():
        _save_outputs(trainer.model, parts, stage, st, out_dir)
        write_json(out_dir / "metrics.json", {**summary, **counts, "loss_history": losses})
    return summary


def _save_outputs(model, parts, stage: str, st, out_dir: Path) -> None:
    if stage == "pretrain":
        save_projector(model, out_dir / "mm_projector.bin")
        return
    if st.tune == "lora":
        model.save_pretrained(out_dir / "adapter")
        model = model.merge_and_unload()
    with atomic_dir(out_dir / "model") as tmp:
        model.save_pretrained(tmp)
        parts.tokenizer.save_pretrained(tmp)
        parts.image_processor.save_pretrained(tmp)
