"""The ``llava-v1`` preset follows one documented recipe: LLaVA-1.0 as first released.

The expected values below are transcribed from the sources, not from the yaml:

* haotian-liu/LLaVA commit ``8959d5c`` (2023-04-17, "LLaVA initial release"): README ("Code and
  Hyperparameters" tables and the stage-1/stage-2 ``torchrun`` commands), ``llava/train/train.py``
  (``DataArguments.image_aspect_ratio='square'``, one ``preprocess`` with the ``conv_v1_2`` system
  prompt and ``_add_speaker_and_signal`` for every sample, ``nn.Linear`` projector, ``<image>``
  expanded to ``(224/14)**2`` patch tokens before tokenising), ``llava/eval/model_vqa.py`` (plain
  ``image_processor.preprocess``, ``###`` stop);
* ``docs/MODEL_ZOO.md`` (row ``LLaVA-13b-delta-v0``: Vicuna-13B-v0, CLIP-L, CC-595K 1e,
  LLaVA-Instruct-158K full_ft-3e).
"""

from __future__ import annotations

import re

import pytest

from llava_core.config.compose import load_experiment
from llava_core.data.conversation import render
from llava_core.model.build import num_image_tokens
from llava_core.train.arguments import training_arguments

# --------------------------------------------------------------------------- the recipe, from the sources
MODEL = {
    "llm_name": "vicuna-13b-v0",  # MODEL_ZOO "Vicuna-13B-v0"; README ./checkpoints/llama-vicuna-13b
    "vision_tower": "openai/clip-vit-large-patch14",  # README --vision_tower
    "image_size": 224, "patch_size": 14, "image_tokens": 256,  # train.py num_patches = (224 // 14) ** 2
    "vision_feature_layer": -2,  # README --mm_vision_select_layer -2
    "projector_type": "linear",  # train.py nn.Linear(vision hidden, LLM hidden)
    "model_max_length": 2048,  # README tables "Max length"
}
# README: "LLaVA is trained on 8 A100 GPUs", --gradient_accumulation_steps 1 in both commands.
GPUS, ACCUMULATION = 8, 1
STAGES = {
    # README pretraining table and command: batch 128 (16 per device), lr 2e-3, 1 epoch, wd 0,
    # --tune_mm_mlp_adapter True, --data_path cc3m_595k.json
    "pretrain": {"tune": "projector", "global_batch_size": 128, "per_device_train_batch_size": 16,
                 "learning_rate": 2e-3, "num_train_epochs": 1},
    # README finetuning table and command: batch 32 (4 per device), lr 2e-5, 3 epochs, wd 0,
    # --data_path llava_instruct_150k.json (LLaVA-Instruct-158K), full LLM + projector (FSDP)
    "finetune": {"tune": "full", "global_batch_size": 32, "per_device_train_batch_size": 4,
                 "learning_rate": 2e-5, "num_train_epochs": 3},
}
# Both commands: --warmup_ratio 0.03 --lr_scheduler_type "cosine" --weight_decay 0.; no --max_grad_norm
# and no DeepSpeed, so the HF Trainer default clip of 1.0 applied.
SCHEDULE = {"warmup_ratio": 0.03, "lr_scheduler_type": "cosine", "weight_decay": 0.0, "max_grad_norm": 1.0}
# conv_v1_2.system at 8959d5c; train.py: header = system + "\n\n", each turn "### {Role}: {value}\n",
# then a trailing "### ".
SYSTEM_8959D5C = ("A chat between a curious human and an artificial intelligence assistant. "
                  "The assistant gives helpful, detailed, and polite answers to the human's questions.")
DATA = {
    "pretrain": "hf://datasets/liuhaotian/LLaVA-CC3M-Pretrain-595K/chat.json",  # CC3M-595K
    "finetune": "hf://datasets/liuhaotian/LLaVA-Instruct-150K/llava_instruct_150k.json",  # 158K records
    "finetune_images": "coco/train2017",  # README --image_folder /Data/haotian/coco/train2017
}


@pytest.fixture(scope="module")
def cfg():
    return load_experiment("llava-v1")


def test_model_is_llava_13b_v0(cfg):
    m = cfg.model
    # Vicuna v0 exists only as delta weights over LLaMA: the user merges it into the data folder.
    assert m.llm.startswith("{data}/") and m.llm.rstrip("/").endswith(MODEL["llm_name"])
    assert not re.search(r"v1[._-]?[135]", m.llm)  # not a later Vicuna (v1.1 / v1.3 / v1.5)
    assert (m.vision_tower, m.image_size, m.patch_size) == (MODEL["vision_tower"], MODEL["image_size"],
                                                             MODEL["patch_size"])
    assert num_image_tokens(m) == MODEL["image_tokens"]
    assert (m.projector_type, m.vision_feature_layer, m.model_max_length) == (
        MODEL["projector_type"], MODEL["vision_feature_layer"], MODEL["model_max_length"])


def test_one_template_for_both_stages_and_evaluation_renders_the_april_text(cfg):
    names = {cfg.pretrain.template, cfg.finetune.template, cfg.model.conversation_template}
    assert len(names) == 1
    question, answer = "<image>\nWhat is in the photo?", "A cat on a sofa."
    rendered = render(names.pop(), [{"from": "human", "value": question}, {"from": "gpt", "value": answer}],
                      has_image=True)
    assert rendered.text == f"{SYSTEM_8959D5C}\n\n### Human: {question}\n### Assistant: {answer}\n### "


def test_images_are_centre_cropped_everywhere(cfg):
    # no expand2square anywhere in 8959d5c: DataArguments.image_aspect_ratio='square', model_vqa.py preprocess
    assert (cfg.pretrain.image_aspect_ratio, cfg.finetune.image_aspect_ratio,
            cfg.evaluation.image_aspect_ratio) == ("square", "square", "square")


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_stage_hyperparameters(cfg, stage):
    st, want = cfg[stage], STAGES[stage]
    for key, value in {**want, **SCHEDULE}.items():
        assert st[key] == value, key
    assert not st.group_by_modality_length  # plain random sampler
    # the image's patch tokens were part of the tokenised text, so max length bounded them too
    assert st.truncation == "expanded"
    ta = training_arguments(st, world_size=GPUS, output_dir="out", seed=cfg.seed, on_gpu=True)
    assert (ta["per_device_train_batch_size"], ta["gradient_accumulation_steps"]) == (
        want["per_device_train_batch_size"], ACCUMULATION)
    assert ta["per_device_train_batch_size"] * GPUS * ta["gradient_accumulation_steps"] == want["global_batch_size"]


def test_data_is_cc3m_595k_then_llava_instruct_158k(cfg):
    urls = {s.url for s in cfg.data.sources}
    assert DATA["pretrain"] in urls and DATA["finetune"] in urls
    by_url = {s.url: s.dest for s in cfg.data.sources}
    assert cfg.data.pretrain_records == by_url[DATA["pretrain"]]
    assert cfg.data.finetune_records == by_url[DATA["finetune"]]
    assert cfg.data.finetune_images.endswith(DATA["finetune_images"])
    assert not any("mix665k" in u or "blip_laion_cc_sbu_558k" in u for u in urls)  # LLaVA-1.5's data
