# Evaluation: one job per benchmark, so changing one benchmark's settings reruns only it. A
# benchmark with evaluation.benchmarks.<b>.num_shards = N > 1 runs as N generation jobs
# (evaluate_shard, the official --num-chunks split; each asks for the eval resources) and the
# evaluate job then merges their answers in question order, judges if needed, and scores.


rule evaluate_shard:
    """Answer the {shard}-th of {n} contiguous chunks of a benchmark's questions."""
    input:
        model=model_input,
        data=dataset_output("download", "summary"),
    output:
        **outputs("evaluate_shard"),
    wildcard_constraints:
        shard=r"\d+",
        n=r"\d+",
    params:
        **common_params(),
        config=fact("evaluate", "generation_digest"),
        code=fact("evaluate", "code_digest"),
        data_dir=lambda w: stage_plan("download", w)["dir"],
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
        "LLAVA_RULE=evaluate_shard {params.llava} evaluate {wildcards.experiment} {wildcards.benchmark} "
        "--overrides-file {params.overrides} --results {params.results} --model {input.model} "
        "--data-dir {params.data_dir} --out {params.out} --shard {wildcards.shard}/{wildcards.n} > {log} 2>&1"


rule evaluate:
    """Answer one benchmark's questions with the stage-2 model or the imported release (or merge its
    shards' answers), then score them."""
    input:
        model=model_input,
        data=dataset_output("download", "summary"),
        shards=fact("evaluate", "shard_outputs"),
    output:
        **outputs("evaluate"),
    params:
        **common_params(),
        config=fact("evaluate", "config_digest"),
        code=fact("evaluate", "code_digest"),
        data_dir=lambda w: stage_plan("download", w)["dir"],
        out=fact("evaluate", "dir"),
        merge=lambda w: f"--merge-shards {n}" if (n := stage_plan("evaluate", w)["num_shards"]) > 1 else "",
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
        "LLAVA_RULE=evaluate {params.llava} evaluate {wildcards.experiment} {wildcards.benchmark} --overrides-file {params.overrides} "
        "--results {params.results} --model {input.model} --data-dir {params.data_dir} --out {params.out} {params.merge} > {log} 2>&1"
