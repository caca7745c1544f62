# Report: each experiment's numbers beside the paper's, and one table across experiments.
# The report job also draws each training stage's curves and tabulates the filter's manifest, for
# `snakemake --report report.html` (its outputs flagged in common.smk's REPORT_FLAGS).


rule report:
    """Tabulate an experiment's benchmark scores beside the paper's (md, csv, png); draw its training
    curves and summarise its data's filter manifest."""
    input:
        unpack(report_sources),
        scores=report_inputs,
    output:
        **outputs("report", REPORT_FLAGS),
    params:
        **common_params(),
        config=fact("report", "config_digest"),
        code=fact("report", "code_digest"),
        out=fact("report", "dir"),
    log:
        log_of("report"),
    benchmark:
        benchmark_of("report")
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "LLAVA_RULE=report {params.llava} report {wildcards.experiment} --overrides-file {params.overrides} --results {params.results} "
        "--out {params.out} > {log} 2>&1"


rule summary:
    """One table across all listed experiments."""
    input:
        [STAGES[(e, "report", None)]["outputs"]["csv"] for e in EXPERIMENTS],
    output:
        **outputs("summary"),
    params:
        llava=LLAVA,
        code=PLANS[EXPERIMENTS[0]]["summary"]["code_digest"],
    log:
        log_of("summary"),
    benchmark:
        benchmark_of("summary")
    threads: 1
    resources:
        **job_resources(None, "summary"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} summary {input} --out {output.md} > {log} 2>&1"
