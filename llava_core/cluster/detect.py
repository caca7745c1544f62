"""What a SLURM cluster offers, read from its own commands.

Partitions come from ``sinfo`` (one line per node configuration: nodes, CPUs, memory and GRES
of each) and ``scontrol show partition`` (limits: time, nodes, memory per node, allowed
accounts); the status-polling facts from ``scontrol show config`` (``MinJobAge``, the
accounting storage) and from whether ``sacct`` answers; the user's accounts from ``sacctmgr``
(``sshare`` when that fails). Every command runs with a timeout, so a controller that does not
answer is an error that says so, not a hang. Parsing is separate from running, so tests feed
canned outputs through a fake :data:`Runner`.
"""

from __future__ import annotations

import getpass
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

COMMAND_TIMEOUT_S = 10.0
SINFO_FORMAT = "%P|%a|%l|%D|%c|%m|%G"  # partition (* = default), availability, time limit, nodes, CPUs, MB, GRES
NO_ACCOUNTING = "accounting_storage/none"


@dataclass(frozen=True)
class Completed:
    """The result of one command: exit status (124: timed out, 127: not found) and its output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        """A one-line reason for a failure: the last line of stderr, else the exit status."""
        lines = [ln.strip() for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {self.returncode}"


Runner = Callable[[Sequence[str], float], Completed]


def run_command(cmd: Sequence[str], timeout: float = COMMAND_TIMEOUT_S) -> Completed:
    """Run ``cmd`` without a shell; a missing program or a timeout becomes a failed result."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return Completed(127, "", f"{cmd[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Completed(124, "", f"`{' '.join(cmd)}` did not answer within {timeout:g} s")
    return Completed(proc.returncode, proc.stdout, proc.stderr)


class SlurmUnavailable(RuntimeError):
    """No SLURM here, or its controller does not answer."""


# ----------------------------------------------------------------------------- parsing
def parse_time_minutes(text: str) -> int | None:
    """A SLURM time limit in whole minutes; None for no limit.

    Formats: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``;
    ``UNLIMITED``/``infinite``/``n/a`` mean no limit.
    """
    text = text.strip()
    if not text or text.lower() in ("unlimited", "infinite", "n/a", "none", "(null)"):
        return None
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(p) for p in rest.split(":")]
        days_n = int(days) if days else 0
    except ValueError:
        return None
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
        return days_n * 1440 + hours * 60 + minutes + seconds // 60
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[0] + parts[1] // 60
    return parts[0] * 60 + parts[1] + parts[2] // 60


def format_minutes(minutes: int | None) -> str:
    """``None`` -> ``no time limit``; 2880 -> ``2 days``; 90 -> ``1 h 30 min``."""
    if minutes is None:
        return "no time limit"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p) or "0 min"


def format_gb(mem_mb: int) -> str:
    """21695 -> ``21.7 GB``; 512000 -> ``512 GB``."""
    return f"{mem_mb / 1000:.1f}".removesuffix(".0") + " GB"


_GPU_GRES = re.compile(r"(?:^|,)gpu(?::([A-Za-z0-9_.\-]+))?:(\d+)")


def parse_gres(text: str) -> tuple[int, tuple[str, ...]]:
    """GPUs per node and their types from a GRES string.

    ``gpu:a100:8(S:0-1)`` -> ``(8, ("a100",))``; ``gpu:1`` -> ``(1, ())``;
    ``gpu:a100:4,gpu:v100:2,mps:200`` -> ``(6, ("a100", "v100"))``; ``(null)`` -> ``(0, ())``.
    """
    text = re.sub(r"\([^)]*\)", "", text.strip())  # socket bindings, e.g. (S:0-1) or (IDX:0,1)
    count, types = 0, []
    for m in _GPU_GRES.finditer(text):
        count += int(m.group(2))
        if m.group(1) and m.group(1) not in types:
            types.append(m.group(1))
    return count, tuple(types)


def _int(text: str) -> int:
    m = re.match(r"\d+", text.strip())
    return int(m.group()) if m else 0


def parse_key_values(line: str) -> dict[str, str]:
    """``A=1 B=x,y=2`` -> ``{"A": "1", "B": "x,y=2"}`` (one record of ``scontrol show ... -o``)."""
    out: dict[str, str] = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep:
            out[key] = value
    return out


def parse_scontrol_config(text: str) -> dict[str, str]:
    """``scontrol show config``: ``Key = value`` lines -> dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_seconds(text: str | None) -> int | None:
    """``300 sec`` / ``300`` / ``1 hour`` / ``5 min`` -> seconds (as the plugin reads MinJobAge)."""
    if not text:
        return None
    m = re.match(r"^(\d+)\s*([A-Za-z]*)", text.strip())
    if not m:
        return None
    value, unit = int(m.group(1)), m.group(2).lower()
    if unit in ("h", "hour", "hours"):
        return value * 3600
    if unit in ("m", "min", "mins", "minute", "minutes"):
        return value * 60
    return value


# ----------------------------------------------------------------------------- partitions
@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one configuration inside a partition (one ``sinfo -e`` line)."""

    count: int
    cpus: int
    mem_mb: int
    gpus: int  # per node
    gpu_types: tuple[str, ...]
    gres: str


@dataclass(frozen=True)
class Partition:
    """A partition: its node configurations and its limits."""

    name: str
    default: bool
    up: bool
    time_limit_min: int | None  # None: no limit
    groups: tuple[NodeGroup, ...]
    max_nodes: int | None = None  # per job; None: no limit
    max_mem_per_node_mb: int | None = None
    max_cpus_per_node: int | None = None
    allow_accounts: tuple[str, ...] = ()  # empty: all

    @property
    def nodes(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def gpus_per_node(self) -> int:
        return max((g.gpus for g in self.groups), default=0)

    @property
    def gpu_types(self) -> tuple[str, ...]:
        out: list[str] = []
        for g in self.groups:
            out += [t for t in g.gpu_types if t not in out]
        return tuple(out)

    def nodes_with(self, gpus: int = 0, cpus: int = 0, mem_mb: int = 0) -> int:
        """How many of its nodes have at least this many GPUs, CPUs and MB each."""
        return sum(g.count for g in self.groups if g.gpus >= gpus and g.cpus >= cpus and g.mem_mb >= mem_mb)

    def summary(self) -> str:
        """``20 nodes: 16 x gpu:a100:8 64 CPUs 500 GB, 4 x ...; 2 days``."""
        groups = []
        for g in self.groups:
            gpu = (f"gpu:{g.gpu_types[0]}:{g.gpus}" if len(g.gpu_types) == 1 else f"gpu:{g.gpus}") if g.gpus else "no GPU"
            groups.append(f"{g.count} node{'s' if g.count != 1 else ''} x ({gpu}, {g.cpus} CPUs, {format_gb(g.mem_mb)})")
        return f"{'; '.join(groups) or 'no nodes'}; {format_minutes(self.time_limit_min)}"


def parse_sinfo(text: str) -> dict[str, dict]:
    """``sinfo -h -e -o SINFO_FORMAT`` -> ``{name: {"default", "up", "time", "groups"}}`` in order."""
    out: dict[str, dict] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 7:
            continue
        name, avail, limit, count, cpus, mem, gres = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        gpus, types = parse_gres(gres)
        part = out.setdefault(name, {"default": default, "up": avail.strip().lower() == "up",
                                     "time": parse_time_minutes(limit), "groups": []})
        part["default"] = part["default"] or default
        part["groups"].append(NodeGroup(_int(count), _int(cpus), _int(mem), gpus, types,
                                        "" if gres.strip() == "(null)" else gres.strip()))
    return out


def _limit(value: str | None) -> int | None:
    if value is None or value.upper() in ("UNLIMITED", "NONE", "N/A", "(NULL)", ""):
        return None
    return _int(value) or None


def parse_partitions(sinfo: str, scontrol: str = "") -> list[Partition]:
    """Partitions from ``sinfo`` node groups, with the limits of ``scontrol show partition -o``."""
    limits = {rec.get("PartitionName"): rec for rec in map(parse_key_values, scontrol.splitlines()) if rec}
    parts = []
    for name, info in parse_sinfo(sinfo).items():
        rec = limits.get(name, {})
        time_limit = parse_time_minutes(rec["MaxTime"]) if "MaxTime" in rec else info["time"]
        allowed = rec.get("AllowAccounts", "ALL")
        parts.append(Partition(
            name=name, default=info["default"] or rec.get("Default") == "YES",
            up=info["up"] if "State" not in rec else rec["State"] == "UP",
            time_limit_min=time_limit, groups=tuple(info["groups"]),
            max_nodes=_limit(rec.get("MaxNodes")), max_mem_per_node_mb=_limit(rec.get("MaxMemPerNode")),
            max_cpus_per_node=_limit(rec.get("MaxCPUsPerNode")),
            allow_accounts=() if allowed.upper() == "ALL" else tuple(a for a in allowed.split(",") if a)))
    return parts


# ----------------------------------------------------------------------------- the cluster
@dataclass(frozen=True)
class ClusterFacts:
    """Everything setup decides from, and where each fact came from."""

    user: str
    partitions: list[Partition]
    cluster_name: str = ""
    slurm_version: str = ""
    accounting: bool = True  # AccountingStorageType is not accounting_storage/none
    accounting_storage: str = ""
    accounts: list[str] = field(default_factory=list)
    default_account: str | None = None
    accounts_from: str = ""  # which command listed them, or why none
    sacct_installed: bool = True
    sacct_ok: bool = False
    sacct_detail: str = ""
    min_job_age_s: int | None = None

    def partition(self, name: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == name), None)

    def describe(self) -> str:
        name = f"SLURM cluster '{self.cluster_name}'" if self.cluster_name else "SLURM cluster"
        return f"{name}{f' (Slurm {self.slurm_version})' if self.slurm_version else ''}, user {self.user}"


def current_user() -> str:
    """The login name, as the plugin finds it (``$USER`` may be unset, e.g. in containers)."""
    return getpass.getuser()


def read_partitions(runner: Runner = run_command) -> list[Partition]:
    """The partitions, or :class:`SlurmUnavailable` if ``sinfo`` is missing or gets no answer."""
    if runner is run_command and not shutil.which("sinfo"):
        raise SlurmUnavailable("`sinfo` not found: no SLURM client here (run this on the cluster's login node)")
    res = runner(["sinfo", "-h", "-e", "-o", SINFO_FORMAT], COMMAND_TIMEOUT_S)
    if not res.ok:
        raise SlurmUnavailable(f"the SLURM controller did not answer: {res.why()} "
                               "(is slurmctld up? try `scontrol ping`)")
    limits = runner(["scontrol", "show", "partition", "-o"], COMMAND_TIMEOUT_S)
    return parse_partitions(res.stdout, limits.stdout if limits.ok else "")


def read_accounts(runner: Runner, user: str) -> tuple[list[str], str | None, str]:
    """The user's accounts, their default account and which command listed them."""
    res = runner(["sacctmgr", "-nP", "show", "assoc", f"user={user}", "format=account"], COMMAND_TIMEOUT_S)
    how = "sacctmgr"
    accounts = _unique(res.stdout.splitlines()) if res.ok else []
    if not accounts:
        res = runner(["sshare", "-nP", "-U", "-u", user, "-o", "account"], COMMAND_TIMEOUT_S)
        how = "sshare"
        accounts = _unique(res.stdout.splitlines()) if res.ok else []
    if not accounts:
        return [], None, f"sacctmgr and sshare list no account for user {user}"
    default = runner(["sacctmgr", "-nP", "show", "user", user, "format=defaultaccount"], COMMAND_TIMEOUT_S)
    found = _unique(default.stdout.splitlines()) if default.ok else []
    return accounts, (found[0] if found and found[0] in accounts else None), how


def _unique(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        value = line.strip().strip("|")
        if value and value not in out:
            out.append(value)
    return out


def probe_sacct(runner: Runner) -> tuple[bool, bool, str]:
    """(installed, works, detail): does ``sacct`` answer for this user's recent jobs?"""
    since = f"{datetime.now() - timedelta(hours=1):%Y-%m-%dT%H:%M}"
    res = runner(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-S", since], COMMAND_TIMEOUT_S)
    if res.returncode == 127:
        return False, False, "sacct is not installed"
    return True, res.ok, "sacct answers" if res.ok else res.why()


def detect(runner: Runner = run_command, user: str | None = None) -> ClusterFacts:
    """Ask the cluster everything setup needs (a few seconds; each command has a timeout)."""
    user = user or current_user()
    partitions = read_partitions(runner)
    conf_res = runner(["scontrol", "show", "config"], COMMAND_TIMEOUT_S)
    conf = parse_scontrol_config(conf_res.stdout) if conf_res.ok else {}
    storage = conf.get("AccountingStorageType", "")
    accounting = storage != NO_ACCOUNTING
    if accounting:
        accounts, default, how = read_accounts(runner, user)
    else:
        accounts, default, how = [], None, f"the cluster has no accounting (AccountingStorageType={storage})"
    installed, works, detail = probe_sacct(runner)
    return ClusterFacts(user=user, partitions=partitions, cluster_name=conf.get("ClusterName", ""),
                        slurm_version=conf.get("SLURM_VERSION", ""), accounting=accounting,
                        accounting_storage=storage, accounts=accounts, default_account=default, accounts_from=how,
                        sacct_installed=installed, sacct_ok=works, sacct_detail=detail,
                        min_job_age_s=parse_seconds(conf.get("MinJobAge")))
