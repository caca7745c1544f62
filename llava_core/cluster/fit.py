"""Does each job of an experiment fit the partition? Its resources (``llava-core plan``'s ``jobs``,
the Snakemake resources the rules pass to the SLURM plugin) against the partition's nodes and
limits: GPUs, CPUs and memory per node, node count, memory per node and time limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from llava_core.cluster.detect import Partition, format_gb, format_minutes, parse_gres


@dataclass(frozen=True)
class JobNeed:
    """What one cluster job asks for (per node where it says so)."""

    stage: str  # the plan's stage key: finetune, eval/pope, ...
    job: str  # the rule: finetune, evaluate, evaluate_shard, ...
    nodes: int
    gpus: int  # per node
    cpus: int  # per task (one task per node)
    mem_mb: int  # per node
    runtime_min: int
    gpu: int = 0  # the `gpu` resource (one node: sbatch --gpus=N)
    gres: str = ""  # the `gres` resource (several nodes: --gres=gpu:N per node)

    def shape(self) -> tuple:
        return self.nodes, self.gpus, self.cpus, self.mem_mb, self.runtime_min, self.gpu, self.gres

    def grown(self, factor: float) -> JobNeed:
        """The same job on a retry that asks for ``factor`` x the memory and time."""
        return JobNeed(self.stage, self.job, self.nodes, self.gpus, self.cpus, int(self.mem_mb * factor),
                       int(self.runtime_min * factor), self.gpu, self.gres)

    def describe(self) -> str:
        per_node = f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}, {self.cpus} CPUs, {format_gb(self.mem_mb)}"
        nodes = f"{self.nodes} nodes x " if self.nodes > 1 else ""
        return f"{nodes}({per_node}), {format_minutes(self.runtime_min)}"


def needs_from_plan(plan: dict, local_jobs: set[str] = frozenset()) -> list[JobNeed]:
    """Every cluster job of a plan (``llava-core plan`` JSON), leaving out the rules Snakemake runs
    locally (``localrules`` in the Snakefile), plus the summary job."""
    out = []
    stages = [(st.get("key", key), st["jobs"]) for key, st in plan["stages"].items()]
    stages.append(("summary", plan.get("summary", {}).get("jobs", {})))
    for key, jobs in stages:
        for job, res in jobs.items():
            if job in local_jobs:
                continue
            gres_gpus, _ = parse_gres(res.get("gres") or "")
            out.append(JobNeed(stage=key, job=job, nodes=int(res.get("nodes") or 1),
                               gpus=int(res.get("gpu") or 0) or gres_gpus, cpus=int(res.get("cpus_per_task") or 1),
                               mem_mb=int(res.get("mem_mb") or 0), runtime_min=int(res.get("runtime") or 0),
                               gpu=int(res.get("gpu") or 0), gres=res.get("gres") or ""))
    return out


def misfits(need: JobNeed, part: Partition) -> list[str]:
    """Why ``need`` cannot run on ``part`` (empty: it fits)."""
    why = []
    if part.max_nodes is not None and need.nodes > part.max_nodes:
        why.append(f"{need.nodes} nodes, the partition allows {part.max_nodes} per job")
    per_node = [("GPUs", need.gpus, part.nodes_with(gpus=need.gpus), part.gpus_per_node),
                ("CPUs", need.cpus, part.nodes_with(cpus=need.cpus), max((g.cpus for g in part.groups), default=0)),
                ("MB of memory", need.mem_mb, part.nodes_with(mem_mb=need.mem_mb),
                 max((g.mem_mb for g in part.groups), default=0))]
    for label, amount, have, best in per_node:
        if have < need.nodes:
            where = f"{have} of its nodes have that" if have else f"its nodes have at most {best}"
            each = f"on each of {need.nodes} nodes" if need.nodes > 1 else "per node"
            why.append(f"{amount} {label} {each}: {where}")
    both = part.nodes_with(need.gpus, need.cpus, need.mem_mb)
    if not why and both < need.nodes:
        why.append(f"{need.nodes} node(s) with {need.gpus} GPUs, {need.cpus} CPUs and {need.mem_mb} MB each: "
                   f"the partition has {both}")
    if part.max_mem_per_node_mb is not None and need.mem_mb > part.max_mem_per_node_mb:
        why.append(f"{need.mem_mb} MB per node, the partition allows {part.max_mem_per_node_mb}")
    if part.max_cpus_per_node is not None and need.cpus > part.max_cpus_per_node:
        why.append(f"{need.cpus} CPUs per node, the partition allows {part.max_cpus_per_node}")
    if part.time_limit_min is not None and need.runtime_min > part.time_limit_min:
        why.append(f"{format_minutes(need.runtime_min)}, the partition's limit is {format_minutes(part.time_limit_min)}")
    return why


def group_misfits(needs: list[JobNeed], part: Partition, growth: float = 1.0) -> list[str]:
    """One line per rule and reason, e.g. ``evaluate (12 jobs: eval/gqa, ...): 1 GPUs per node: ...``;
    with ``growth`` > 1, the jobs as a retry asks for them (more memory and time)."""
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for need in needs:
        reasons = misfits(need.grown(growth) if growth != 1.0 else need, part)
        if reasons:
            groups.setdefault((need.job, tuple(reasons)), []).append(need.stage)
    lines = []
    for (job, reasons), stages in groups.items():
        if stages == [job]:
            which = ""
        elif len(stages) == 1:
            which = f" ({stages[0]})"
        else:
            which = f" ({len(stages)} jobs: {', '.join(stages[:3])}{', ...' if len(stages) > 3 else ''})"
        lines.append(f"{job}{which} asks {'; '.join(reasons)}")
    return lines


def sbatch_test_args(need: JobNeed, gpu_model: str | None) -> list[str]:
    """The resource flags the SLURM plugin gives this job (for ``sbatch --test-only``)."""
    args = [f"--nodes={need.nodes}", f"--cpus-per-task={need.cpus}", "--mem", str(need.mem_mb),
            "-t", str(max(1, need.runtime_min))]
    if need.gres:
        args.append(f"--gres={need.gres}")
    if gpu_model:
        args.append(f"--gpus={gpu_model}:{need.gpu}")
    elif need.gpu:
        args.append(f"--gpus={need.gpu}")
    if not need.gpu and "gpu" not in need.gres:
        args.append("--ntasks=1")
    return args
