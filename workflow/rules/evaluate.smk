# Evaluation: one job per benchmark and stage identity, so changing one benchmark's settings reruns
# only it, and variants with the same model and settings share it. A benchmark with
# evaluation.benchmarks.<b>.num_shards = N > 1 runs as N generation jobs (evaluate_shard, the
# official --num-chunks split; each asks for the eval resources) and the evaluate job then merges
# their answers in question order, judges if needed, and scores.


rule evaluate_shard:
    """Answer the {shard}-th of {n} contiguous chunks of a benchmark's questions."""
    input:
        model=lambda w: model_stage("evaluate", w)["outputs"]["model"],
        data=download_of("evaluate"),
    output:
        **outputs("evaluate_shard"),
    wildcard_constraints:
        shard=r"\d+",
        n=r"\d+",
    params:
        **common_params("evaluate"),
        config=fact("evaluate", "generation_digest"),
        code=fact("evaluate", "code_digest"),
        data_dir=lambda w: upstream_of("evaluate", w, "download")["dir"],
        out=fact("evaluate", "dir"),
    log:
        log_of("evaluate_shard"),
    benchmark:
        benchmark_of("evaluate_shard")
    threads: job_threads("evaluate", "evaluate_shard")
    resources:
        **job_resources("evaluate", "evaluate_shard"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=evaluate_shard {params.llava} evaluate {wildcards.benchmark} --job {params.job} "
        "--results {params.results} --model {input.model} --data-dir {params.data_dir} --out {params.out} "
        "--shard {wildcards.shard}/{wildcards.n} > {log} 2>&1"


rule evaluate:
    """Answer one benchmark's questions with the stage-2 model or the imported release (or merge its
    shards' answers), then score them."""
    input:
        model=lambda w: model_stage("evaluate", w)["outputs"]["model"],
        data=download_of("evaluate"),
        shards=fact("evaluate", "shard_outputs"),
    output:
        **outputs("evaluate"),
    params:
        **common_params("evaluate"),
        config=fact("evaluate", "config_digest"),
        code=fact("evaluate", "code_digest"),
        data_dir=lambda w: upstream_of("evaluate", w, "download")["dir"],
        out=fact("evaluate", "dir"),
        merge=lambda w: f"--merge-shards {n}" if (n := job_of("evaluate", w)["num_shards"]) > 1 else "",
    log:
        log_of("evaluate"),
    benchmark:
        benchmark_of("evaluate")
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=evaluate {params.llava} evaluate {wildcards.benchmark} --job {params.job} --results {params.results} "
        "--model {input.model} --data-dir {params.data_dir} --out {params.out} {params.merge} > {log} 2>&1"
