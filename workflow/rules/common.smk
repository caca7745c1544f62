# Shared state of the workflow: the experiments and their plans. `llava-core plan` is the only
# source of stage facts: every output path, log and benchmark file, the rerun triggers (a digest
# of each stage's resolved config and of the code its entry point imports) and the resources of
# every job. The helpers below look them up; the rules hard-code none.
import json
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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


def _overrides_file(experiment):
    """Every job gets the run's overrides through this file, named by a constant param.

    Passing them as a param would make any override a rerun trigger for every stage; instead
    each stage's trigger is the digest of its own resolved config (params.config), so changing
    the stage-2 learning rate reruns stage 2 and what follows, and nothing else.
    """
    path = Path(RESULTS) / "overrides" / f"{experiment}.json"
    content = json.dumps(OVERRIDES, indent=1) + "\n"
    if not path.exists() or path.read_text() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(content)
        tmp.replace(path)
    return str(path)


def _plan(experiment):
    """The experiment's plan, or the one-line reason it cannot be planned."""
    cmd = [*shlex.split(LLAVA), "plan", experiment, "--results", RESULTS,
           *[a for o in OVERRIDES for a in ("-o", o)]]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        return None, (f"cannot run {cmd[0]!r}: install the package (pip install -e .) "
                      "or set llava_core in config/config.yaml")
    if res.returncode:
        lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
        return None, lines[-1] if lines else f"{' '.join(cmd)} failed ({res.returncode})"
    return json.loads(res.stdout), None


with ThreadPoolExecutor(max_workers=4) as _pool:
    _PLANNED = dict(zip(EXPERIMENTS, _pool.map(_plan, EXPERIMENTS)))
_ERRORS = [err for _, err in _PLANNED.values() if err]
if _ERRORS:
    # A bad experiment, key or value is the user's input, not a bug: one message, no traceback.
    sys.exit("\n".join(dict.fromkeys(_ERRORS)) + "\n(experiments and overrides come from config/config.yaml "
             "or --config experiments=... overrides=\"KEY=VALUE ...\")")
PLANS = {e: plan for e, (plan, _) in _PLANNED.items()}
OVERRIDES_FILE = {e: _overrides_file(e) for e in EXPERIMENTS}
# Output, log and benchmark-file patterns of every job, with wildcards (the same in every plan).
LAYOUT = PLANS[EXPERIMENTS[0]]["layout"]

# Experiments sharing a dataset name share its download, instruct and filter jobs, so they must
# agree on how the dataset is defined (its sources and its generated instruction data).
DATASETS = {}
# A trained experiment first: it plans every dataset job (a released checkpoint's plans no filter).
for _exp, _p in sorted(PLANS.items(), key=lambda item: item[1]["released"]):
    _first = DATASETS.setdefault(_p["dataset"], _exp)
    if PLANS[_first]["dataset_config"] != _p["dataset_config"]:
        raise WorkflowError(f"experiments {_first!r} and {_exp!r} define dataset {_p['dataset']!r} "
                            "differently; give one of them another data.name")

# (experiment, kind, benchmark) -> the plan's entry for that stage.
STAGES = {(e, st["kind"], st["benchmark"]): st for e, p in PLANS.items() for st in p["stages"].values()}


wildcard_constraints:
    experiment="|".join(re.escape(e) for e in EXPERIMENTS),
    dataset="|".join(re.escape(d) for d in DATASETS),
    benchmark="|".join(re.escape(b) for b in sorted({b for p in PLANS.values() for b in p["benchmarks"]})),


def common_params(experiment_of=lambda w: w.experiment):
    """Params passed to llava-core by every job; constant strings, so no rerun triggers."""
    return dict(llava=LLAVA, results=lambda w: RESULTS, overrides=lambda w: OVERRIDES_FILE[experiment_of(w)])


def dataset_of(experiment):
    return PLANS[experiment]["dataset"]


def data_experiment(dataset):
    """The experiment whose config the dataset's jobs compose (all agree, see above)."""
    return DATASETS[dataset]


def experiment_of(w):
    """The experiment a job's config comes from (a dataset job's: see data_experiment)."""
    return data_experiment(w.dataset) if "dataset" in w.keys() else w.experiment


def stage_plan(kind, w):
    """The plan's entry for the stage of kind ``kind`` of job ``w``'s experiment (for an
    evaluation, of the job's benchmark)."""
    bench = getattr(w, "benchmark", None)
    return STAGES.get((experiment_of(w), kind, bench)) or STAGES[(experiment_of(w), kind, None)]


def fact(kind, key):
    """A fact of the job's stage from the plan (a digest, a folder, a list of inputs)."""
    return lambda w: stage_plan(kind, w)[key]


def outputs(job, reports=None):
    """The output patterns of ``job`` from the layout (folders marked as such); ``reports`` maps
    some of their names to the arguments of Snakemake's report() flag (`snakemake --report`)."""
    out = {}
    for name, path in LAYOUT[job]["outputs"].items():
        path = directory(path) if name in LAYOUT[job]["folders"] else path
        out[name] = report(path, **reports[name]) if name in (reports or {}) else path
    return out


def _in_report(caption, subcategory, **labels):
    """report() arguments: a result of the experiment's category, captioned by workflow/report/<caption>
    (a path from workflow/rules/, where the rules using it are)."""
    return dict(caption=f"../report/{caption}", category="{experiment}", subcategory=subcategory, labels=labels)


# What `snakemake --report report.html` shows of each experiment: outputs of the report job.
REPORT_FLAGS = {
    "csv": _in_report("benchmarks.rst", "Benchmarks", shows="table"),
    "png": _in_report("scores.rst", "Benchmarks", shows="plot"),
    "pretrain_curves": _in_report("pretrain_curves.rst", "Training", stage="pretrain (stage 1)"),
    "finetune_curves": _in_report("finetune_curves.rst", "Training", stage="finetune (stage 2)"),
    "data_summary": _in_report("data_summary.rst", "Data", shows="filter: kept and dropped records"),
}


def output_of(job, name):
    """One output pattern of another job, as an input."""
    return LAYOUT[job]["outputs"][name]


def log_of(job):
    return LAYOUT[job]["log"]


def benchmark_of(job):
    return LAYOUT[job]["benchmark"]


def dataset_output(job, name):
    """An output of a dataset job, as an input of an experiment's job."""
    return lambda w: output_of(job, name).format(dataset=dataset_of(w.experiment))


def benchmarks_of(experiment):
    return PLANS[experiment]["benchmarks"]


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
        jobs = PLANS[EXPERIMENTS[0]]["summary"]["jobs"] if kind is None else stage_plan(kind, w)["jobs"]
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


def report_inputs(w):
    return [st["outputs"]["scores"] for (e, kind, _), st in STAGES.items()
            if e == w.experiment and kind == "evaluate"]


def mirror_inputs(w):
    """The tiny world's mirror, which a job's sources (the dataset's, instruct's, a tiny release's)
    come from (real data: none)."""
    exp = data_experiment(dataset_of(experiment_of(w)))
    return {"sources": STAGES[(exp, "synthesize", None)]["outputs"]["sources"]} if PLANS[exp]["synthetic"] else {}


def import_inputs(w):
    """The dataset's download (the import may read a part from the data folder, e.g. the tiny CLIP
    tower) and the tiny world's mirror."""
    return {"download": output_of("download", "summary").format(dataset=dataset_of(w.experiment)), **mirror_inputs(w)}


def mirror_url(w, input):
    """``--base-url`` of the synthetic mirror a job fetches from (none for real data)."""
    return f"--base-url file://{Path(input.sources).resolve().parent}" if "sources" in input.keys() else ""


def filter_inputs(w):
    """The download's summary and, where the experiment regenerates LLaVA-Instruct, its records."""
    exp = data_experiment(w.dataset)
    inputs = {"download": output_of("download", "summary").format(dataset=w.dataset)}
    if (exp, "instruct", None) in STAGES:
        inputs["instruct"] = STAGES[(exp, "instruct", None)]["outputs"]["records"]
    return inputs


def model_input(w):
    """The model an experiment's evaluations read: its stage-2 model, or its imported release."""
    kind = "import" if PLANS[w.experiment]["released"] else "finetune"
    return STAGES[(w.experiment, kind, None)]["outputs"]["model"]


def report_sources(w):
    """What a report draws besides the scores: the training curves and the filter's manifest, or,
    for a released checkpoint (no training, no filter), the import's summary."""
    stage = lambda kind: STAGES[(w.experiment, kind, None)]
    if PLANS[w.experiment]["released"]:
        return {"imported": stage("import")["outputs"]["summary"]}
    return {"pretrain": stage("pretrain")["outputs"]["metrics"], "finetune": stage("finetune")["outputs"]["metrics"],
            "manifest": stage("filter")["outputs"]["manifest"]}
