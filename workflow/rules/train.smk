# Training: stage 1 (projector alignment) and stage 2 (visual instruction tuning), one job per stage
# identity (variants with the same stage 1 share it), with the GPUs, nodes, memory and time of its config.


rule pretrain:
    """Stage 1: train the projector on image-caption pairs (vision tower and LLM frozen)."""
    input:
        lambda w: upstream_of("pretrain", w, "filter")["outputs"]["manifest"],
    output:
        **outputs("pretrain"),
    params:
        **common_params("pretrain"),
        config=fact("pretrain", "config_digest"),
        code=fact("pretrain", "code_digest"),
        data_dir=lambda w: upstream_of("pretrain", w, "download")["dir"],
        filtered=lambda w: upstream_of("pretrain", w, "filter")["dir"],
        out=fact("pretrain", "dir"),
    log:
        log_of("pretrain"),
    benchmark:
        benchmark_of("pretrain")
    threads: job_threads("pretrain")
    resources:
        **job_resources("pretrain"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=pretrain {params.llava} pretrain --job {params.job} --results {params.results} "
        "--data-dir {params.data_dir} --filtered {params.filtered} --out {params.out} > {log} 2>&1"


rule finetune:
    """Stage 2: train the LLM (full or LoRA) and the projector on the instruction mixture."""
    input:
        data=lambda w: upstream_of("finetune", w, "filter")["outputs"]["manifest"],
        projector=lambda w: upstream_of("finetune", w, "pretrain")["outputs"]["projector"],
    output:
        **outputs("finetune"),
    params:
        **common_params("finetune"),
        config=fact("finetune", "config_digest"),
        code=fact("finetune", "code_digest"),
        data_dir=lambda w: upstream_of("finetune", w, "download")["dir"],
        filtered=lambda w: upstream_of("finetune", w, "filter")["dir"],
        init=lambda w: upstream_of("finetune", w, "pretrain")["dir"],
        out=fact("finetune", "dir"),
    log:
        log_of("finetune"),
    benchmark:
        benchmark_of("finetune")
    threads: job_threads("finetune")
    resources:
        **job_resources("finetune"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=finetune {params.llava} finetune --job {params.job} --results {params.results} "
        "--data-dir {params.data_dir} --filtered {params.filtered} --init {params.init} --out {params.out} > {log} 2>&1"


rule import_checkpoint:
    """A released checkpoint instead of training: fetch its declared files (verified against a lock)
    or take its folder, and convert it (original or llava-hf layout) for the evaluations."""
    input:
        unpack(import_inputs),
    output:
        **outputs("import"),
    params:
        **common_params("import"),
        config=fact("import", "config_digest"),
        code=fact("import", "code_digest"),
        data_dir=lambda w: upstream_of("import", w, "download")["dir"],
        out=fact("import", "dir"),
        base_url=mirror_url,
    log:
        log_of("import"),
    benchmark:
        benchmark_of("import")
    threads: job_threads("import")
    resources:
        **job_resources("import"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=import_checkpoint {params.llava} import --job {params.job} --results {params.results} "
        "--data-dir {params.data_dir} --out {params.out} {params.base_url} > {log} 2>&1"
