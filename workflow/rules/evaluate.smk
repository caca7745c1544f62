# Evaluation: one job per benchmark, so changing one benchmark's settings reruns only it. A
# benchmark with evaluation.benchmarks.<b>.num_shards = N > 1 runs as N generation jobs
# (evaluate_shard, the official --num-chunks split; each asks for the eval resources) and the
# evaluate job then merges their answers in question order, judges if needed, and scores.


rule evaluate_shard:
    """Answer the {shard}-th of {n} contiguous chunks of a benchmark's questions."""
    input:
        model=f"{RESULTS}/{{experiment}}/finetune/model",
        data=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}/download.json",
    output:
        answers=f"{RESULTS}/{{experiment}}/eval/{{benchmark}}/shards/{{shard}}_of_{{n}}.jsonl",
    wildcard_constraints:
        shard=r"\d+",
        n=r"\d+",
    params:
        **common_params(),
        config=lambda w: generation_hash(w.experiment, f"eval/{w.benchmark}"),
        code=lambda w: code_hash("eval", w.benchmark),
        data_dir=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}",
        out=lambda w: f"{RESULTS}/{w.experiment}/eval/{w.benchmark}",
    log:
        f"{RESULTS}/logs/{{experiment}}/eval/{{benchmark}}.shard{{shard}}_of_{{n}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}/eval/{{benchmark}}.shard{{shard}}_of_{{n}}.tsv"
    threads: lambda w: resource(w.experiment, f"eval/{w.benchmark}", "cpus")
    resources:
        mem_mb=on_retry(lambda w: resource(w.experiment, f"eval/{w.benchmark}", "mem_mb")),
        runtime=on_retry(lambda w: resource(w.experiment, f"eval/{w.benchmark}", "runtime")),
        gpu=lambda w: resource(w.experiment, f"eval/{w.benchmark}", "gpus"),
        cpus_per_task=lambda w: resource(w.experiment, f"eval/{w.benchmark}", "cpus"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=evaluate_shard {params.llava} evaluate {wildcards.experiment} {wildcards.benchmark} "
        "--overrides-file {params.overrides} --results {params.results} --model {input.model} "
        "--data-dir {params.data_dir} --out {params.out} --shard {wildcards.shard}/{wildcards.n} > {log} 2>&1"


rule evaluate:
    """Answer one benchmark's questions with the stage-2 model (or merge its shards' answers), then score them."""
    input:
        model=f"{RESULTS}/{{experiment}}/finetune/model",
        data=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}/download.json",
        shards=shard_answers,
    output:
        scores=f"{RESULTS}/{{experiment}}/eval/{{benchmark}}/scores.json",
        answers=f"{RESULTS}/{{experiment}}/eval/{{benchmark}}/answers.jsonl",
    params:
        **common_params(),
        config=lambda w: stage_hash(w.experiment, f"eval/{w.benchmark}"),
        code=lambda w: code_hash("eval", w.benchmark),
        data_dir=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}",
        out=lambda w: f"{RESULTS}/{w.experiment}/eval/{w.benchmark}",
        merge=lambda w: f"--merge-shards {eval_shards(w)}" if eval_shards(w) > 1 else "",
    log:
        f"{RESULTS}/logs/{{experiment}}/eval/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}/eval/{{benchmark}}.tsv"
    threads: evaluate_resource("cpus")
    resources:
        mem_mb=on_retry(evaluate_resource("mem_mb")),
        runtime=on_retry(evaluate_resource("runtime")),
        gpu=evaluate_resource("gpus"),
        cpus_per_task=evaluate_resource("cpus"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=evaluate {params.llava} evaluate {wildcards.experiment} {wildcards.benchmark} --overrides-file {params.overrides} "
        "--results {params.results} --model {input.model} --data-dir {params.data_dir} --out {params.out} {params.merge} > {log} 2>&1"
