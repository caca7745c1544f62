# LLaVA-1.5, reproduced end to end. The DAG, per variant (an experiment preset in config/config.yaml,
# plus overrides, or a point of a sweep):
#   synthesize (tiny only) -> download -> [instruct: regenerated LLaVA-Instruct, if enabled] -> filter
#   -> pretrain -> finetune (a released checkpoint instead: import_checkpoint) -> evaluate (per benchmark)
#   -> report, and one summary across variants. A stage two variants share runs once (docs/experiments.md).
# Every rule calls the `llava-core` CLI; hyperparameters live in the Hydra presets under config/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# `snakemake --report report.html`: this description, the outputs flagged in workflow/rules/report.smk
# and Snakemake's own runtime statistics, in one self-contained HTML file.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Jobs that need the network (or next to no compute) run where Snakemake runs (the login or
# transfer node on a cluster): instruct talks to a hosted teacher API, import_checkpoint fetches
# released weights from the hub. The filter needs no network but many cores: a cluster job.
localrules:
    all,
    synthesize,
    download,
    instruct,
    import_checkpoint,
    summary,

include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        summary=LAYOUT["summary"]["outputs"]["md"],
        reports=[REPORTS[v]["outputs"]["md"] for v in VARIANTS],
    default_target: True
