# Data: the tiny world is generated into a local mirror; every dataset is then downloaded
# (verified against a lock file) and filtered into the training sets. One job per stage identity,
# shared by all variants that use it.


rule synthesize:
    """Generate the tiny synthetic world and base models, packed as a file:// mirror."""
    output:
        **outputs("synthesize"),
    params:
        **common_params("synthesize"),
        config=fact("synthesize", "config_digest"),
        code=fact("synthesize", "code_digest"),
    log:
        log_of("synthesize"),
    benchmark:
        benchmark_of("synthesize")
    threads: job_threads("synthesize")
    resources:
        **job_resources("synthesize"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} synthesize --job {params.job} --out $(dirname {output.sources}) > {log} 2>&1"


rule download:
    """Fetch every source of the dataset (and crawl OCR-VQA's covers), verify sizes and checksums
    against <data>/download.lock.json, link the pieces into place; write what was verified."""
    input:
        unpack(mirror_inputs("download")),
    output:
        **outputs("download"),
    params:
        **common_params("download"),
        config=fact("download", "config_digest"),
        code=fact("download", "code_digest"),
        data_dir=fact("download", "dir"),
        base_url=mirror_url,
    log:
        log_of("download"),
    benchmark:
        benchmark_of("download")
    threads: job_threads("download")
    resources:
        **job_resources("download"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} download --job {params.job} --results {params.results} --data-dir {params.data_dir} "
        "{params.base_url} --workers {threads} --out {output.summary} > {log} 2>&1"


rule instruct:
    """Regenerate LLaVA-Instruct: a teacher chat model writes conversations, detailed descriptions and
    complex reasoning from each COCO image's captions and boxes (planned only when
    data.instruct.generate.enabled; replies are cached, so a rerun sends only missing requests)."""
    input:
        unpack(instruct_inputs),
    output:
        **outputs("instruct"),
    params:
        **common_params("instruct"),
        config=fact("instruct", "config_digest"),
        code=fact("instruct", "code_digest"),
        data_dir=lambda w: upstream_of("instruct", w, "download")["dir"],
        out=fact("instruct", "dir"),
        base_url=mirror_url,
    log:
        log_of("instruct"),
    benchmark:
        benchmark_of("instruct")
    threads: job_threads("instruct")
    resources:
        **job_resources("instruct"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} instruct --job {params.job} --results {params.results} --data-dir {params.data_dir} "
        "--out {params.out} {params.base_url} > {log} 2>&1"


rule filter:
    """Drop records with missing or broken images and duplicates; write the training sets (with the
    regenerated LLaVA-Instruct mixed into stage 2, where a variant asks for it)."""
    input:
        unpack(filter_inputs),
    output:
        **outputs("filter"),
    params:
        **common_params("filter"),
        config=fact("filter", "config_digest"),
        code=fact("filter", "code_digest"),
        data_dir=lambda w: upstream_of("filter", w, "download")["dir"],
        out=fact("filter", "dir"),
        instruct=instruct_dir,
    log:
        log_of("filter"),
    benchmark:
        benchmark_of("filter")
    threads: job_threads("filter")
    resources:
        **job_resources("filter"),
    conda:
        "../../envs/llava-core.yaml"
    shell:
        "{params.llava} filter --job {params.job} --results {params.results} --data-dir {params.data_dir} "
        "--out {params.out} {params.instruct} --workers {threads} > {log} 2>&1"
