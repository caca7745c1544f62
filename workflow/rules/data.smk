# Data: the tiny world is generated into a local mirror; every dataset is then downloaded
# (verified against a lock file) and filtered into the training sets. One set of jobs per
# dataset, shared by all experiments that use it.


rule synthesize:
    """Generate the tiny synthetic world and base models, packed as a file:// mirror."""
    output:
        f"{RESULTS}/data/{{dataset}}/mirror/sources.json",
    params:
        **common_params(lambda w: data_experiment(w.dataset)),
        experiment=lambda w: data_experiment(w.dataset),
        config=lambda w: PLANS[data_experiment(w.dataset)]["stages"]["download"]["hash"],
        code=code_hash("synthesize"),
    log:
        f"{RESULTS}/logs/data/{{dataset}}/synthesize.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}/synthesize.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} synthesize {params.experiment} --overrides-file {params.overrides} --out $(dirname {output}) > {log} 2>&1"


rule download:
    """Fetch every source of the dataset (and crawl OCR-VQA's covers), verify sizes and checksums
    against <data>/download.lock.json, link the pieces into place; write what was verified."""
    input:
        download_inputs,
    output:
        f"{RESULTS}/data/{{dataset}}/download.json",
    params:
        **common_params(lambda w: data_experiment(w.dataset)),
        experiment=lambda w: data_experiment(w.dataset),
        config=lambda w: PLANS[data_experiment(w.dataset)]["stages"]["download"]["hash"],
        code=code_hash("download"),
        data_dir=lambda w: f"{RESULTS}/data/{w.dataset}",
        base_url=lambda w, input: (f"--base-url file://{Path(input[0]).resolve().parent}" if input else ""),
    log:
        f"{RESULTS}/logs/data/{{dataset}}/download.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}/download.tsv"
    threads: lambda w: resource(data_experiment(w.dataset), "download", "cpus")
    resources:
        mem_mb=lambda w: resource(data_experiment(w.dataset), "download", "mem_mb"),
        runtime=lambda w: resource(data_experiment(w.dataset), "download", "runtime"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} download {params.experiment} --overrides-file {params.overrides} --results {params.results} --data-dir {params.data_dir} "
        "{params.base_url} --workers {threads} --out {output} > {log} 2>&1"


rule filter:
    """Drop records with missing or broken images and duplicates; write the training sets."""
    input:
        f"{RESULTS}/data/{{dataset}}/download.json",
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/filtered/manifest.json",
        pretrain=f"{RESULTS}/data/{{dataset}}/filtered/pretrain.json",
        finetune=f"{RESULTS}/data/{{dataset}}/filtered/finetune.json",
    params:
        **common_params(lambda w: data_experiment(w.dataset)),
        experiment=lambda w: data_experiment(w.dataset),
        config=lambda w: stage_hash(data_experiment(w.dataset), "filter"),
        code=code_hash("filter"),
        data_dir=lambda w: f"{RESULTS}/data/{w.dataset}",
    log:
        f"{RESULTS}/logs/data/{{dataset}}/filter.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}/filter.tsv"
    threads: lambda w: resource(data_experiment(w.dataset), "filter", "cpus")
    resources:
        mem_mb=lambda w: resource(data_experiment(w.dataset), "filter", "mem_mb"),
        runtime=lambda w: resource(data_experiment(w.dataset), "filter", "runtime"),
        cpus_per_task=lambda w: resource(data_experiment(w.dataset), "filter", "cpus"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} filter {params.experiment} --overrides-file {params.overrides} --results {params.results} --data-dir {params.data_dir} "
        "--workers {threads} > {log} 2>&1"
