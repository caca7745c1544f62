# Report: each variant's numbers beside the paper's (and its seed group's mean, std and n), and one
# table across variants. The report job also draws each training stage's curves, tabulates the
# filter's manifest (for `snakemake --report report.html`, its outputs flagged in common.smk's
# REPORT_FLAGS) and links the shared stage folders and MLflow runs the variant uses.


rule report:
    """Tabulate a variant's benchmark scores beside the paper's (md, csv, png); draw its training
    curves and summarise its data's filter manifest."""
    input:
        unpack(report_inputs),
    output:
        **outputs("report", REPORT_FLAGS),
    params:
        **common_params("report"),
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
        "LLAVA_RULE=report {params.llava} report --job {params.job} --results {params.results} "
        "--out {params.out} > {log} 2>&1"


rule summary:
    """One table across all listed variants, and per seed group its mean, std and n."""
    input:
        [REPORTS[v]["outputs"]["csv"] for v in VARIANTS],
    output:
        **outputs("summary"),
    params:
        llava=LLAVA,
        code=PLAN["summary"]["code_digest"],
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
