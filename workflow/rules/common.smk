# Shared state of the workflow: the variants asked for and their plan. `llava-core plan` is the only
# source of stage facts: every variant (a preset plus overrides, or a point of a sweep), every
# stage once with its identity and folder (two variants with the same stage share one job), every
# output path, log and benchmark file, the rerun triggers (a digest of each stage's resolved config
# and of the code that determines its outputs) and the resources of every job. The helpers below
# look them up; the rules hard-code none.
import functools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def _check_config():
    """Snakemake's schema validation, reported in one message (its own error is a page of schema)."""
    import difflib

    import yaml

    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as e:
        schema = yaml.safe_load(Path(workflow.source_path("../schemas/config.schema.yaml")).read_text())
        allowed = list(schema["properties"])
        problems = []
        for key in config:
            if key not in allowed:
                near = difflib.get_close_matches(key, allowed, n=1)
                problems.append(f"unknown config key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        if not problems:
            import jsonschema

            for err in jsonschema.Draft202012Validator(schema).iter_errors(dict(config)):
                key = ".".join(map(str, err.absolute_path)) or "config"
                what = schema["properties"].get(str(err.absolute_path[0]) if err.absolute_path else "", {})
                problems.append(f"{key}={err.instance!r} is not valid"
                                + (f": expected {what['description']}" if what.get("description") else ""))
        if not problems:
            problems.append(str(e).splitlines()[0])
        sys.exit("; ".join(problems) + f"; allowed keys: {', '.join(allowed)} "
                 "(config/config.yaml or --config KEY=VALUE)")


_check_config()

RESULTS = config["results"].rstrip("/")
LLAVA = config["llava_core"]


def _as_list(value, split):
    if isinstance(value, str):
        return [v for v in split(value) if v]
    return list(value or [])


EXPERIMENTS = _as_list(config["experiments"], lambda s: [x.strip() for x in s.split(",")])
OVERRIDES = _as_list(config.get("overrides", []), shlex.split)
SWEEP = str(config.get("sweep") or "")


def _plan():
    """Every variant and stage, planned in one process (`llava-core plan`), or the one-line reason
    it cannot be planned."""
    cmd = [*shlex.split(LLAVA), "plan", ",".join(EXPERIMENTS), "--results", RESULTS,
           *(["--sweep", SWEEP] if SWEEP else []), *[a for o in OVERRIDES for a in ("-o", o)]]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        return None, (f"cannot run {cmd[0]!r}: install the package (pip install -e .) "
                      "or set llava_core in config/config.yaml")
    if res.returncode:
        lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
        return None, lines[-1] if lines else f"{' '.join(cmd)} failed ({res.returncode})"
    return json.loads(res.stdout), None


PLAN, _ERROR = _plan()
if _ERROR:
    # A bad experiment, key, value or sweep is the user's input, not a bug: one message, no traceback.
    sys.exit(f"{_ERROR}\n(experiments, overrides and sweep come from config/config.yaml or --config "
             "experiments=... overrides=\"KEY=VALUE ...\" sweep=\"KEY=V1,V2 ...\")")
VARIANTS = PLAN["variants"]  # name -> variant, in the order asked for
JOBS = PLAN["stages"]  # "<kind>:<folder>" -> the stage's entry, each stage once
# Output patterns of every job, with wildcards ({dataset}, {sid}, {benchmark}, {variant}).
LAYOUT = PLAN["layout"]


def _write_if_changed(path, obj):
    """Write a JSON file only when its content changes (atomically): jobs read it, and its path,
    not its content, is what their params hold."""
    content = json.dumps(obj, indent=1) + "\n"
    path = Path(path)
    if not path.exists() or path.read_text() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(content)
        tmp.replace(path)
    return str(path)


def _job_file(entry):
    """The job file of a stage: the preset, overrides and name of the variant whose config its job
    composes (the first that uses it: all of them agree on the stage, by its identity). Its path
    depends only on the stage's folder, so which variant owns a shared stage is no rerun trigger."""
    rel = "__".join(Path(entry["dir"]).relative_to(RESULTS).parts)
    owner = VARIANTS[entry["owner"]]
    spec = {"experiment": owner["preset"], "overrides": owner["overrides"], "variant": owner["name"],
            "group": owner["group"], "sweep": owner["sweep"], "axes": owner["axes"]}
    if entry["kind"] == "report":
        v = VARIANTS[entry["owner"]]
        members = [m for m in VARIANTS.values() if m["group"] == v["group"] and not m["released"]]
        spec["stages"] = {key: JOBS[job]["dir"] for key, job in v["stages"].items()}
        if len(members) > 1:  # the seeds of this configuration: their scores, for the group's statistics
            spec["group_scores"] = {m["name"]: {b: stage_of(m["name"], f"eval/{b}")["outputs"]["scores"]
                                                for b in m["benchmarks"]} for m in members}
    return _write_if_changed(f"{RESULTS}/.jobs/{entry['kind']}--{rel}.json", spec)


def stage_of(variant, key):
    """The entry of the stage ``key`` (``finetune``, ``eval/pope``) that ``variant`` uses."""
    return JOBS[VARIANTS[variant]["stages"][key]]


JOB_FILES = {job: _job_file(entry) for job, entry in JOBS.items()}
REPORTS = {v: stage_of(v, "report") for v in VARIANTS}


def _names(values):
    return "|".join(re.escape(v) for v in sorted(set(values))) or "__none__"


wildcard_constraints:
    dataset=_names(e["dataset"] for e in JOBS.values()),
    sid=r"[0-9a-f]{12}",
    benchmark=_names(e["benchmark"] for e in JOBS.values() if e["benchmark"]),
    variant=_names(VARIANTS),


def job_of(kind, w):
    """The entry of the stage of kind ``kind`` that job ``w`` runs (found by its folder)."""
    return _job_of(kind, tuple(sorted(w.items())))


@functools.lru_cache(maxsize=None)
def _job_of(kind, wildcards):
    # Every param, input and resource of a job looks its stage up: once per job, not once each.
    return JOBS[f"{kind}:{LAYOUT[kind]['dir'].format(**dict(wildcards))}"]


def fact(kind, key):
    """A fact of the job's stage from the plan (a digest, a folder, a list of inputs)."""
    return lambda w: job_of(kind, w)[key]


def job_file(kind):
    """The job's file: its preset, overrides and variant (a constant path per stage)."""
    return lambda w: JOB_FILES[f"{kind}:{job_of(kind, w)['dir']}"]


def upstream_of(kind, w, key):
    """The entry of stage ``key`` as the variant owning job ``w`` uses it (``filter``, ``pretrain``...)."""
    return stage_of(job_of(kind, w)["owner"], key)


def owner_variant(kind, w):
    return VARIANTS[job_of(kind, w)["owner"]]


def common_params(kind):
    """Params passed to llava-core by every job; constant strings per stage, so no rerun triggers."""
    return dict(llava=LLAVA, results=lambda w: RESULTS, job=job_file(kind))


def outputs(job, reports=None):
    """The output patterns of ``job`` from the layout (folders marked as such); ``reports`` maps
    some of their names to the arguments of Snakemake's report() flag (`snakemake --report`)."""
    out = {}
    for name, path in LAYOUT[job]["outputs"].items():
        path = directory(path) if name in LAYOUT[job]["folders"] else path
        out[name] = report(path, **reports[name]) if name in (reports or {}) else path
    return out


def _in_report(caption, subcategory, **labels):
    """report() arguments: a result of the variant's category, captioned by workflow/report/<caption>
    (a path from workflow/rules/, where the rules using it are)."""
    return dict(caption=f"../report/{caption}", category="{variant}", subcategory=subcategory, labels=labels)


# What `snakemake --report report.html` shows of each variant: outputs of the report job.
REPORT_FLAGS = {
    "csv": _in_report("benchmarks.rst", "Benchmarks", shows="table"),
    "png": _in_report("scores.rst", "Benchmarks", shows="plot"),
    "pretrain_curves": _in_report("pretrain_curves.rst", "Training", stage="pretrain (stage 1)"),
    "finetune_curves": _in_report("finetune_curves.rst", "Training", stage="finetune (stage 2)"),
    "data_summary": _in_report("data_summary.rst", "Data", shows="filter: kept and dropped records"),
}


def log_of(job):
    """The log pattern of ``job`` (a rule), from the layout."""
    return LAYOUT[job]["log"]


def benchmark_of(job):
    """The pattern of ``job``'s Snakemake benchmark file (its run time and memory), from the layout."""
    return LAYOUT[job]["benchmark"]


RETRY_GROWTH = 0.5


def on_retry(base):
    """Memory or time that grows by half of ``base`` with each retry of a failed job.

    SLURM ends a job that runs out of memory or time, and Snakemake's retry is the same job again;
    since Snakemake does not tell resource functions why the attempt failed, every retry asks for
    more of both (attempt 2: 1.5x, attempt 3: 2x).
    """
    return lambda w, attempt: int(base(w) * (1 + RETRY_GROWTH * (attempt - 1)))


def _job(kind, job, key):
    def get(w):
        jobs = PLAN["summary"]["jobs"] if kind is None else job_of(kind, w)["jobs"]
        return jobs[job][key]

    return get


def job_resources(kind, job=None):
    """The Snakemake resources of a job, from the plan (memory and time grow on retries)."""
    job = job or kind
    res = {key: _job(kind, job, key) for key in ("nodes", "cpus_per_task", "gpu", "gres")}
    res.update(mem_mb=on_retry(_job(kind, job, "mem_mb")), runtime=on_retry(_job(kind, job, "runtime")))
    return res


def job_threads(kind, job=None):
    return _job(kind, job or kind, "threads")


def mirror_inputs(kind):
    """The tiny world's mirror, which a job's sources (the dataset's, instruct's, a tiny release's)
    come from (real data: none)."""
    def get(w):
        owner = owner_variant(kind, w)
        return {"sources": stage_of(owner["name"], "synthesize")["outputs"]["sources"]} if owner["synthetic"] else {}

    return get


def mirror_url(w, input):
    """``--base-url`` of the synthetic mirror a job fetches from (none for real data)."""
    return f"--base-url file://{Path(input.sources).resolve().parent}" if "sources" in input.keys() else ""


def download_of(kind):
    """The dataset's download summary (the data folder a job reads), as an input."""
    return lambda w: upstream_of(kind, w, "download")["outputs"]["summary"]


def instruct_inputs(w):
    return {"download": download_of("instruct")(w), **mirror_inputs("instruct")(w)}


def filter_inputs(w):
    """The download's summary and, where the variant regenerates LLaVA-Instruct, its records."""
    owner = owner_variant("filter", w)
    inputs = {"download": download_of("filter")(w)}
    if "instruct" in owner["stages"]:
        inputs["instruct"] = stage_of(owner["name"], "instruct")["outputs"]["records"]
    return inputs


def instruct_dir(w):
    """``--instruct DIR`` of a filter job whose variant regenerates LLaVA-Instruct (else none)."""
    owner = owner_variant("filter", w)
    return f"--instruct {stage_of(owner['name'], 'instruct')['dir']}" if "instruct" in owner["stages"] else ""


def import_inputs(w):
    """The dataset's download (the import may read a part from the data folder, e.g. the tiny CLIP
    tower) and the tiny world's mirror."""
    return {"download": download_of("import")(w), **mirror_inputs("import")(w)}


def model_stage(kind, w):
    """The stage giving the model an evaluation reads: the stage-2 model, or the imported release."""
    owner = owner_variant(kind, w)
    return stage_of(owner["name"], "import" if owner["released"] else "finetune")


def report_inputs(w):
    """What a variant's report reads: its scores, the seeds of its group's scores, and its training
    curves and filter manifest, or, for a released checkpoint (no training, no filter), the
    import's summary."""
    v = VARIANTS[w.variant]
    inputs = {"scores": [stage_of(v["name"], f"eval/{b}")["outputs"]["scores"] for b in v["benchmarks"]]}
    spec = json.loads(Path(JOB_FILES[f"report:{REPORTS[w.variant]['dir']}"]).read_text())
    inputs["group"] = sorted({p for paths in spec.get("group_scores", {}).values() for p in paths.values()})
    if v["released"]:
        inputs["imported"] = stage_of(v["name"], "import")["outputs"]["summary"]
    else:
        inputs.update(pretrain=stage_of(v["name"], "pretrain")["outputs"]["metrics"],
                      finetune=stage_of(v["name"], "finetune")["outputs"]["metrics"],
                      manifest=stage_of(v["name"], "filter")["outputs"]["manifest"])
    return inputs
