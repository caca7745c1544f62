# Training: stage 1 (projector alignment) and stage 2 (visual instruction tuning), one job each
# per experiment, with the GPUs, nodes, memory and time of the experiment's config.


def _filtered(w):
    return f"{RESULTS}/data/{dataset_of(w.experiment)}/filtered/manifest.json"


def _train_resources(stage):
    return dict(
        mem_mb=lambda w: resource(w.experiment, stage, "mem_mb"),
        runtime=lambda w: resource(w.experiment, stage, "runtime"),
        gpu=lambda w: resource(w.experiment, stage, "gpus"),
        nodes=lambda w: resource(w.experiment, stage, "nodes"),
        cpus_per_task=lambda w: resource(w.experiment, stage, "cpus"),
    )


rule pretrain:
    """Stage 1: train the projector on image-caption pairs (vision tower and LLM frozen)."""
    input:
        _filtered,
    output:
        projector=f"{RESULTS}/{{experiment}}/pretrain/mm_projector.bin",
        metrics=f"{RESULTS}/{{experiment}}/pretrain/metrics.json",
    params:
        config=lambda w: stage_hash(w.experiment, "pretrain"),
        code=code_hash("train"),
        data_dir=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}",
        out=lambda w: f"{RESULTS}/{w.experiment}/pretrain",
    log:
        f"{RESULTS}/logs/{{experiment}}/pretrain.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}/pretrain.tsv"
    threads: lambda w: resource(w.experiment, "pretrain", "cpus")
    resources:
        **_train_resources("pretrain"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=pretrain {LLAVA} pretrain {wildcards.experiment} {OVR} --results {RESULTS} "
        "--data-dir {params.data_dir} --out {params.out} > {log} 2>&1"


rule finetune:
    """Stage 2: train the LLM (full or LoRA) and the projector on the instruction mixture."""
    input:
        data=_filtered,
        projector=f"{RESULTS}/{{experiment}}/pretrain/mm_projector.bin",
    output:
        model=directory(f"{RESULTS}/{{experiment}}/finetune/model"),
        metrics=f"{RESULTS}/{{experiment}}/finetune/metrics.json",
    params:
        config=lambda w: stage_hash(w.experiment, "finetune"),
        code=code_hash("train"),
        data_dir=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}",
        out=lambda w: f"{RESULTS}/{w.experiment}/finetune",
    log:
        f"{RESULTS}/logs/{{experiment}}/finetune.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}/finetune.tsv"
    threads: lambda w: resource(w.experiment, "finetune", "cpus")
    resources:
        **_train_resources("finetune"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=finetune {LLAVA} finetune {wildcards.experiment} {OVR} --results {RESULTS} "
        "--data-dir {params.data_dir} --init $(dirname {input.projector}) --out {params.out} > {log} 2>&1"
