# Evaluation: one job per benchmark, so changing one benchmark's settings reruns only it.


rule evaluate:
    """Answer one benchmark's questions with the stage-2 model and score them."""
    input:
        model=f"{RESULTS}/{{experiment}}/finetune/model",
        data=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}/download.lock.json",
    output:
        scores=f"{RESULTS}/{{experiment}}/eval/{{benchmark}}/scores.json",
        answers=f"{RESULTS}/{{experiment}}/eval/{{benchmark}}/answers.jsonl",
    params:
        **common_params(),
        config=lambda w: stage_hash(w.experiment, f"eval/{w.benchmark}"),
        code=lambda w: code_hash("eval", w.benchmark),
        data_dir=lambda w: f"{RESULTS}/data/{dataset_of(w.experiment)}",
        out=lambda w: f"{RESULTS}/{w.experiment}/eval/{w.benchmark}",
    log:
        f"{RESULTS}/logs/{{experiment}}/eval/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}/eval/{{benchmark}}.tsv"
    threads: lambda w: resource(w.experiment, f"eval/{w.benchmark}", "cpus")
    resources:
        mem_mb=lambda w: resource(w.experiment, f"eval/{w.benchmark}", "mem_mb"),
        runtime=lambda w: resource(w.experiment, f"eval/{w.benchmark}", "runtime"),
        gpu=lambda w: resource(w.experiment, f"eval/{w.benchmark}", "gpus"),
        cpus_per_task=lambda w: resource(w.experiment, f"eval/{w.benchmark}", "cpus"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=evaluate {params.llava} evaluate {wildcards.experiment} {wildcards.benchmark} --overrides-file {params.overrides} "
        "--results {params.results} --model {input.model} --data-dir {params.data_dir} --out {params.out} > {log} 2>&1"
