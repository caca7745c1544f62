"""The profile's settings, decided from what :mod:`detect` found, the command-line flags, and
(only where the cluster leaves a real choice) the user's answer.

Each setting comes with the reason it was chosen, printed by ``llava-core cluster setup`` and
written into the profile as a comment. Without a way to ask (``--yes``), an ambiguous setting
takes its default, and one without a default is an error that lists the choices and the flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llava_core.cluster.detect import ClusterFacts, Partition

# First status check this many seconds after a submission. squeue asks slurmctld's memory, so a
# short first look is cheap and catches short jobs early; sacct queries the accounting database.
SQUEUE_INIT_S = 8
SACCT_INIT_S = 20
NONE_WORDS = ("", "none", "no", "any")

# (question, choices as (value, description), default or None) -> the chosen value
Ask = Callable[[str, list[tuple[str, str]], str | None], str]


class SetupError(ValueError):
    """A setting that cannot be decided (or a flag that does not fit this cluster)."""


@dataclass(frozen=True)
class Choice:
    """One setting and why it was chosen."""

    value: str | int | None
    why: str


@dataclass(frozen=True)
class Settings:
    """What the profile says about this cluster."""

    partition: Choice
    account: Choice
    gpu_model: Choice
    status_command: Choice
    init_seconds: Choice

    def rows(self) -> list[tuple[str, Choice]]:
        return [("partition", self.partition), ("account", self.account), ("gpu_model", self.gpu_model),
                ("status command", self.status_command), ("first status check", self.init_seconds)]


def _pick(ask: Ask | None, what: str, flag: str, choices: list[tuple[str, str]], default: str | None) -> str:
    if ask is not None:
        return ask(f"Which {what}?", choices, default)
    if default is not None:
        return default
    listed = "\n".join(f"  {value:<16} {desc}" for value, desc in choices)
    raise SetupError(f"several {what}s fit and none is the default; choose one with {flag}:\n{listed}")


def choose_partition(facts: ClusterFacts, flag: str | None, ask: Ask | None) -> Choice:
    names = [p.name for p in facts.partitions]
    if flag:
        part = facts.partition(flag)
        if part is None:
            raise SetupError(f"--partition {flag}: no such partition here; partitions: {', '.join(names)}")
        return Choice(part.name, f"given with --partition ({part.summary()})")
    usable = [p for p in facts.partitions if p.up] or facts.partitions
    if not usable:
        raise SetupError("sinfo lists no partition")
    default = next((p for p in usable if p.default), None)
    gpu = [p for p in usable if p.gpus_per_node]
    if default is not None and default.gpus_per_node:
        return Choice(default.name, f"the default partition, with GPUs ({default.summary()})")
    if len(gpu) == 1:
        return Choice(gpu[0].name, f"the only partition with GPUs ({gpu[0].summary()})")
    if gpu:
        name = _pick(ask, "GPU partition", "--partition", [(p.name, p.summary()) for p in gpu], None)
        return Choice(name, f"chosen among {len(gpu)} GPU partitions ({facts.partition(name).summary()})")
    if default is not None:
        return Choice(default.name, f"no partition has GPUs; the default partition ({default.summary()}): "
                                    "GPU stages will not fit (`llava-core cluster check` lists them)")
    if len(usable) == 1:
        return Choice(usable[0].name, f"the only partition ({usable[0].summary()})")
    name = _pick(ask, "partition", "--partition", [(p.name, p.summary()) for p in usable], None)
    return Choice(name, f"chosen among {len(usable)} partitions without GPUs")


def choose_account(facts: ClusterFacts, partition: Partition | None, flag: str | None, ask: Ask | None) -> Choice:
    accounts = list(facts.accounts)
    if partition is not None and partition.allow_accounts:
        accounts = [a for a in accounts if a in partition.allow_accounts]
    if flag is not None:
        if flag.strip().lower() in NONE_WORDS:
            return Choice(None, "none (given with --account none): sbatch runs without -A")
        if facts.accounts and flag not in facts.accounts:
            raise SetupError(f"--account {flag}: not one of your accounts ({', '.join(facts.accounts)}; "
                             f"from {facts.accounts_from})")
        return Choice(flag, "given with --account")
    if not facts.accounting:
        return Choice(None, f"none: {facts.accounts_from}")
    if not accounts:
        why = facts.accounts_from if not facts.accounts else \
            f"none of your accounts ({', '.join(facts.accounts)}) may use partition {partition.name}"
        return Choice(None, f"none: {why}; sbatch runs without -A")
    if len(accounts) == 1:
        return Choice(accounts[0], f"your only account ({facts.accounts_from})")
    default = facts.default_account if facts.default_account in accounts else None
    name = _pick(ask, "account", "--account", [(a, "your default account" if a == default else "") for a in accounts],
                 default)
    why = "your default account" if name == default and ask is None else "chosen"
    return Choice(name, f"{why}, among {', '.join(accounts)} ({facts.accounts_from})")


def choose_gpu_model(partition: Partition, flag: str | None, ask: Ask | None) -> Choice:
    types = partition.gpu_types
    gres = ", ".join(sorted({g.gres for g in partition.groups if g.gres})) or "no GRES"
    if flag is not None:
        if flag.strip().lower() in NONE_WORDS:
            return Choice(None, "none (given with --gpu-model none): jobs take any GPU")
        if types and flag not in types:
            raise SetupError(f"--gpu-model {flag}: partition {partition.name} has {', '.join(types)} ({gres})")
        return Choice(flag, "given with --gpu-model")
    if not types:
        return Choice(None, f"none: the GRES of {partition.name} names no GPU type ({gres}); jobs take any GPU")
    if len(types) == 1:
        return Choice(types[0], f"the GPU type in the GRES of {partition.name} ({gres})")
    name = _pick(ask, "GPU type", "--gpu-model", [("any", "any GPU"), *[(t, "") for t in types]], "any")
    if name.lower() in NONE_WORDS:
        return Choice(None, f"none: {partition.name} has several GPU types ({', '.join(types)}); jobs take any")
    return Choice(name, f"chosen among the GPU types of {partition.name} ({', '.join(types)})")


def choose_status(facts: ClusterFacts, command: str | None, init: int | None) -> tuple[Choice, Choice]:
    """The status command and the first check's delay, keeping the plugin's rule: it uses squeue
    only while MinJobAge >= 3 x slurm-init-seconds-before-status-checks (else it falls back to
    sacct, which on a cluster without accounting never answers and Snakemake waits forever)."""
    age = facts.min_job_age_s
    if command:
        cmd = Choice(command, "given with --status-command")
    elif facts.sacct_ok:
        cmd = Choice("sacct", "sacct answers (the plugin's default; it reads the accounting database)")
    else:
        cmd = Choice("squeue", f"sacct does not work here ({facts.sacct_detail}); squeue asks slurmctld")
    rule = f"the plugin keeps squeue only if MinJobAge ({age} s) >= 3 x this"
    if init is not None:
        if init < 1:
            raise SetupError("--init-seconds must be at least 1")
        if cmd.value == "squeue" and age is not None and 3 * init > age and facts.sacct_installed:
            raise SetupError(f"--init-seconds {init}: {rule} ({3 * init} s); the plugin would switch to sacct. "
                             f"Use at most {age // 3}")
        return cmd, Choice(init, "given with --init-seconds" + (f"; {rule} ({3 * init} s)" if cmd.value == "squeue"
                                                                 and age is not None else ""))
    if cmd.value == "sacct":
        return cmd, Choice(SACCT_INIT_S, f"{SACCT_INIT_S} s: sacct queries the accounting database, no need to "
                                         "ask earlier")
    if not facts.sacct_installed:
        return cmd, Choice(SQUEUE_INIT_S, f"{SQUEUE_INIT_S} s (sacct is not installed, so the plugin always uses squeue)")
    if age is None:
        raise SetupError("sacct does not work and `scontrol show config` gives no MinJobAge, so the plugin would "
                         "replace squeue by sacct and wait forever; ask your admins, or force it with "
                         "--status-command squeue --init-seconds N")
    seconds = min(SQUEUE_INIT_S, age // 3)
    if seconds < 1:
        raise SetupError(f"sacct does not work and MinJobAge is {age} s: squeue forgets finished jobs too soon "
                         "(the plugin needs MinJobAge >= 3 x the first check's delay); ask your admins to enable "
                         "accounting or raise MinJobAge to 60 s or more")
    return cmd, Choice(seconds, f"{seconds} s: {rule} ({3 * seconds} s)")


def choose(facts: ClusterFacts, *, partition: str | None = None, account: str | None = None,
           gpu_model: str | None = None, status_command: str | None = None, init_seconds: int | None = None,
           ask: Ask | None = None) -> Settings:
    """Every setting, from the flags first, then the cluster, then (if ``ask``) the user."""
    part = choose_partition(facts, partition, ask)
    p = facts.partition(part.value)
    cmd, init = choose_status(facts, status_command, init_seconds)
    return Settings(partition=part, account=choose_account(facts, p, account, ask),
                    gpu_model=choose_gpu_model(p, gpu_model, ask), status_command=cmd, init_seconds=init)
