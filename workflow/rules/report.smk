# Report: each experiment's numbers beside the paper's, and one table across experiments.


rule report:
    """Tabulate an experiment's benchmark scores beside the paper's (md, csv, png)."""
    input:
        lambda w: expand(f"{RESULTS}/{w.experiment}/eval/{{benchmark}}/scores.json",
                         benchmark=benchmarks_of(w.experiment)),
    output:
        md=f"{RESULTS}/{{experiment}}/report.md",
        csv=f"{RESULTS}/{{experiment}}/report.csv",
        png=f"{RESULTS}/{{experiment}}/report.png",
    params:
        **common_params(),
        config=lambda w: stage_hash(w.experiment, "report"),
        code=code_hash("report"),
        eval_dir=lambda w: f"{RESULTS}/{w.experiment}/eval",
        out=lambda w: f"{RESULTS}/{w.experiment}",
    log:
        f"{RESULTS}/logs/{{experiment}}/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{experiment}}/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=report {params.llava} report {wildcards.experiment} --overrides-file {params.overrides} --results {params.results} "
        "--eval-dir {params.eval_dir} --out {params.out} > {log} 2>&1"


rule summary:
    """One table across all listed experiments."""
    input:
        expand(f"{RESULTS}/{{experiment}}/report.csv", experiment=EXPERIMENTS),
    output:
        f"{RESULTS}/report.md",
    params:
        llava=LLAVA,
        code=code_hash("report"),
    log:
        f"{RESULTS}/logs/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} summary {input} --out {output} > {log} 2>&1"
