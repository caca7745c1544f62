# Shared state of the workflow: the experiments, their plans (from `llava-core plan`), the
# rerun triggers (a digest of each stage's resolved config and of the code it runs) and the
# resources each job asks for.
import hashlib
import json
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

ROOT = Path(workflow.main_snakefile).resolve().parent
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
    cmd = [*shlex.split(LLAVA), "plan", experiment, *[a for o in OVERRIDES for a in ("-o", o)]]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise WorkflowError(f"cannot run {cmd[0]!r}: install the package (pip install -e .) "
                            "or set llava_core in config/config.yaml")
    if res.returncode:
        lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
        raise WorkflowError(lines[-1] if lines else f"{' '.join(cmd)} failed ({res.returncode})")
    return json.loads(res.stdout)


with ThreadPoolExecutor(max_workers=4) as _pool:
    PLANS = dict(zip(EXPERIMENTS, _pool.map(_plan, EXPERIMENTS)))
OVERRIDES_FILE = {e: _overrides_file(e) for e in EXPERIMENTS}

# Experiments sharing a dataset name share its download and filter jobs, so they must agree
# on how the dataset is defined.
DATASETS = {}
for _exp, _p in PLANS.items():
    _first = DATASETS.setdefault(_p["dataset"], _exp)
    if PLANS[_first]["download_config"] != _p["download_config"]:
        raise WorkflowError(f"experiments {_first!r} and {_exp!r} define dataset {_p['dataset']!r} "
                            "differently; give one of them another data.name")


wildcard_constraints:
    experiment="|".join(re.escape(e) for e in EXPERIMENTS),
    dataset="|".join(re.escape(d) for d in DATASETS),


def common_params(experiment_of=lambda w: w.experiment):
    """Params passed to llava-core by every job; constant strings, so no rerun triggers."""
    return dict(llava=LLAVA, results=lambda w: RESULTS, overrides=lambda w: OVERRIDES_FILE[experiment_of(w)])


def dataset_of(experiment):
    return PLANS[experiment]["dataset"]


def data_experiment(dataset):
    """The experiment whose config the dataset's jobs compose (all agree, see above)."""
    return DATASETS[dataset]


def benchmarks_of(experiment):
    return PLANS[experiment]["benchmarks"]


def stage_hash(experiment, stage):
    return PLANS[experiment]["stages"][stage]["hash"]


def resource(experiment, stage, key):
    return PLANS[experiment]["stages"][stage]["resources"][key]


def num_shards(experiment, benchmark):
    return PLANS[experiment]["stages"][f"eval/{benchmark}"].get("num_shards", 1)


def generation_hash(experiment, stage):
    """The rerun trigger of a shard job: the stage config less the judge and the shard count."""
    st = PLANS[experiment]["stages"][stage]
    return st.get("generation_hash", st["hash"])


def merge_needs_eval_resources(experiment, benchmark):
    """A merge job judging with a local model needs the eval GPU; any other merge job does not."""
    return PLANS[experiment]["stages"][f"eval/{benchmark}"].get("local_judge", False)


def eval_shards(w):
    return num_shards(w.experiment, w.benchmark)


def shard_answers(w):
    n = eval_shards(w)
    if n == 1:
        return []
    return [f"{RESULTS}/{w.experiment}/eval/{w.benchmark}/shards/{k}_of_{n}.jsonl" for k in range(n)]


RETRY_GROWTH = 0.5


def on_retry(base):
    """Memory or time that grows by half of ``base`` with each retry of a failed job.

    SLURM ends a job that runs out of memory or time, and Snakemake's retry is the same job again;
    since Snakemake does not tell resource functions why the attempt failed, every retry asks for
    more of both (attempt 2: 1.5x, attempt 3: 2x).
    """
    return lambda w, attempt: int(base(w) * (1 + RETRY_GROWTH * (attempt - 1)))


def evaluate_resource(key):
    """A merge job only concatenates and scores: a small CPU job, unless a local judge runs in it."""

    def get(w):
        if eval_shards(w) > 1 and not merge_needs_eval_resources(w.experiment, w.benchmark):
            return {"gpus": 0, "cpus": 1, "mem_mb": 4000, "runtime": 30}[key]
        return resource(w.experiment, f"eval/{w.benchmark}", key)

    return get


# Code each stage runs: editing it reruns that stage (and, through its outputs, what follows).
# Content digests, not mtimes, so a fresh checkout reruns nothing.
CODE = {
    "synthesize": ["llava_core/data/synthetic.py", "llava_core/model/tiny.py", "llava_core/io.py"],
    "download": ["llava_core/prepare/sources.py", "llava_core/prepare/download.py", "llava_core/prepare/crawl.py",
                 "llava_core/prepare/stage.py", "llava_core/io.py"],
    "filter": ["llava_core/prepare/filter.py", "llava_core/prepare/overlap.py", "llava_core/prepare/balance.py",
               "llava_core/prepare/stage.py", "llava_core/prepare/lengths.py", "llava_core/data/formats.py",
               "llava_core/data/conversation.py", "llava_core/data/tokenize.py", "llava_core/data/inspect.py",
               "llava_core/io.py"],
    "train": ["llava_core/train", "llava_core/model/build.py", "llava_core/model/training_forward.py",
              "llava_core/model/checkpoints.py", "llava_core/data/conversation.py",
              "llava_core/data/tokenize.py", "llava_core/data/images.py", "llava_core/data/dataset.py",
              "llava_core/data/formats.py"],
    "eval": ["llava_core/evaluate/generate.py", "llava_core/evaluate/run.py", "llava_core/evaluate/judge.py",
             "llava_core/evaluate/benchmarks/base.py", "llava_core/evaluate/benchmarks/__init__.py",
             "llava_core/evaluate/benchmarks/answer_processing.py", "llava_core/model/build.py",
             "llava_core/model/training_forward.py", "llava_core/model/checkpoints.py",
             "llava_core/data/conversation.py", "llava_core/data/tokenize.py", "llava_core/data/images.py"],
    "report": ["llava_core/evaluate/report.py", "llava_core/evaluate/paper.py"],
}
_BENCH_FILE = {"mmbench_cn": "mmbench"}


def code_hash(group, benchmark=None):
    paths = list(CODE[group])
    if benchmark is not None:
        paths.append(f"llava_core/evaluate/benchmarks/{_BENCH_FILE.get(benchmark, benchmark)}.py")
    h = hashlib.sha256()
    for rel in paths:
        p = ROOT / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            if f.exists():
                h.update(str(f.relative_to(ROOT)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def download_inputs(w):
    """A synthetic dataset is downloaded from the mirror its synthesize job writes."""
    if PLANS[data_experiment(w.dataset)]["synthetic"]:
        return [f"{RESULTS}/data/{w.dataset}/mirror/sources.json"]
    return []


def filtered_manifest(w):
    return f"{RESULTS}/data/{dataset_of(w.experiment)}/filtered/manifest.json"


def train_resources(stage):
    """Scheduler resources of a training stage, from the experiment's config."""
    return dict(
        mem_mb=on_retry(lambda w: resource(w.experiment, stage, "mem_mb")),
        runtime=on_retry(lambda w: resource(w.experiment, stage, "runtime")),
        # One node: `gpu` (sbatch --gpus=N, also limits local runs given --resources gpu=N).
        # Several nodes: `gres` (--gres=gpu:N is per node; --gpus would count the whole job).
        gpu=lambda w: resource(w.experiment, stage, "gpus") if resource(w.experiment, stage, "nodes") == 1 else 0,
        gres=lambda w: (f"gpu:{resource(w.experiment, stage, 'gpus')}"
                        if resource(w.experiment, stage, "nodes") > 1 and resource(w.experiment, stage, "gpus")
                        else ""),
        nodes=lambda w: resource(w.experiment, stage, "nodes"),
        cpus_per_task=lambda w: resource(w.experiment, stage, "cpus"),
    )
