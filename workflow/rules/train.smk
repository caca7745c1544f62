# Training: stage 1 (projector alignment) and stage 2 (visual instruction tuning), one job each
# per experiment, with the GPUs, nodes, memory and time of the experiment's config.


rule pretrain:
    """Stage 1: train the projector on image-caption pairs (vision tower and LLM frozen)."""
    input:
        filtered_manifest,
    output:
        projector=f"{RESULTS}/{{experiment}}/pretrain/mm_projector.bin",
        metrics=f"{RESULTS}/{{experiment}}/pretrain/metrics.json",
    params:
        **common_params(),
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
        **train_resources("pretrain"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=pretrain {params.llava} pretrain {wildcards.experiment} --overrides-file {params.overrides} --results {params.results} "
        "--data-dir {params.data_dir} --out {params.out} > {log} 2>&1"


rule finetune:
    """Stage 2: train the LLM (full or LoRA) and the projector on the instruction mixture."""
    input:
        data=filtered_manifest,
        projector=f"{RESULTS}/{{experiment}}/pretrain/mm_projector.bin",
    output:
        model=directory(f"{RESULTS}/{{experiment}}/finetune/model"),
        metrics=f"{RESULTS}/{{experiment}}/finetune/metrics.json",
    params:
        **common_params(),
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
        **train_resources("finetune"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=finetune {params.llava} finetune {wildcards.experiment} --overrides-file {params.overrides} --results {params.results} "
        "--data-dir {params.data_dir} --init $(dirname {input.projector}) --out {params.out} > {log} 2>&1"
