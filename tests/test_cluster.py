"""``llava-core cluster setup`` and ``llava-core cluster check``.

Unit tests feed the detection canned outputs of sinfo, scontrol, sacctmgr and sacct (in their
real formats) and check what setup chooses and writes; the rest runs against the real one-node
cluster of ``.ci/slurm/start.sh`` (skipped without it, except under CI, where it must be up).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import run, slurm_cluster_up

from llava_core.cluster import detect as detect_module
from llava_core.cluster.choose import SetupError, choose
from llava_core.cluster.detect import Completed, detect, parse_gres, parse_partitions, parse_time_minutes
from llava_core.cluster.doctor import FAIL, OK, WARN, Doctor, Workflow
from llava_core.cluster.fit import group_misfits, needs_from_plan
from llava_core.cluster.probe import probe_tracking_uri
from llava_core.cluster.profile import (
    evaluate_resource,
    is_edited,
    load_profile,
    render,
    resource_literal,
)

# ----------------------------------------------------------------------------- canned outputs
# The one-node CI cluster (.ci/slurm/start.sh), as its commands print it.
CI_SINFO = "debug*|up|infinite|1|2|21695|gpu:1\n"
CI_PARTITIONS = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED "
    "MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost PriorityJobFactor=1 "
    "PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP "
    "TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED "
    "MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=21695M,node=1,billing=2\n")
CI_CONFIG = """Configuration data as of 2026-11-30T15:52:25
AccountingStorageBackupHost = (null)
AccountingStorageEnforce = none
AccountingStorageHost   = localhost
AccountingStoragePort   = 0
AccountingStorageTRES   = cpu,mem,energy,node,billing,fs/disk,vmem,pages
AccountingStorageType   = accounting_storage/none
AuthInfo                = socket=/tmp/slurm-ci/munge/run/munge.socket.2
ClusterName             = ci
DefMemPerCPU            = 2048
KillWait                = 10 sec
MinJobAge               = 300 sec
SLURM_VERSION           = 22.05.8
"""
NO_ACCOUNTING = ("You are not running a supported accounting_storage plugin\n"
                 "Only 'accounting_storage/slurmdbd' is supported.\n")

# A university GPU cluster: A100 nodes of two memory sizes in the default partition, H100 nodes,
# a CPU partition, a mixed-GPU partition; accounting through slurmdbd; two accounts.
GPU_SINFO = """gpu*|up|2-00:00:00|16|64|512000|gpu:a100:8(S:0-1)
gpu*|up|2-00:00:00|4|64|1024000|gpu:a100:8(S:0-1)
h100|up|1-00:00:00|8|96|1024000|gpu:h100:8(S:0-1)
cpu|up|7-00:00:00|40|128|256000|(null)
mixed|up|12:00:00|2|32|128000|gpu:v100:4,gpu:t4:2
"""


def _part(name: str, default: str, max_time: str, max_nodes: str, nodes: str, accounts: str = "ALL") -> str:
    return (f"PartitionName={name} AllowGroups=ALL AllowAccounts={accounts} AllowQos=ALL AllocNodes=ALL "
            f"Default={default} QoS=N/A DefaultTime=01:00:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
            f"Hidden=NO MaxNodes={max_nodes} MaxTime={max_time} MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED "
            f"Nodes={nodes} PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO "
            "OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=1280 TotalNodes=20 SelectTypeParameters=NONE "
            "JobDefaults=DefCpuPerGPU=8 DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED "
            "TRES=cpu=1280,mem=12000000M,node=20,billing=1280,gres/gpu=160\n")


def gpu_partitions(default: str = "gpu") -> str:
    yes = {name: "YES" if name == default else "NO" for name in ("gpu", "h100", "cpu", "mixed")}
    return (_part("gpu", yes["gpu"], "2-00:00:00", "4", "gpu[001-020]")
            + _part("h100", yes["h100"], "1-00:00:00", "2", "h100-[01-08]", accounts="proj-b")
            + _part("cpu", yes["cpu"], "7-00:00:00", "UNLIMITED", "cpu[001-040]")
            + _part("mixed", yes["mixed"], "12:00:00", "UNLIMITED", "mix[1-2]"))


GPU_PARTITIONS = gpu_partitions()
GPU_CONFIG = CI_CONFIG.replace("accounting_storage/none", "accounting_storage/slurmdbd").replace(
    "ClusterName             = ci", "ClusterName             = hpc").replace("22.05.8", "23.11.4")


class FakeSlurm:
    """A Runner answering each SLURM command with a canned Completed (first matching prefix)."""

    def __init__(self, answers: dict[str, Completed]):
        self.answers, self.calls = answers, []

    def __call__(self, cmd: Sequence[str], timeout: float) -> Completed:
        self.calls.append(list(cmd))
        line = " ".join(cmd)
        for prefix, answer in self.answers.items():
            if line.startswith(prefix):
                return answer
        return Completed(127, "", f"{cmd[0]}: command not found")


def ok(out: str = "") -> Completed:
    return Completed(0, out, "")


def ci_cluster(min_job_age: str = "300 sec") -> FakeSlurm:
    return FakeSlurm({"sinfo": ok(CI_SINFO), "scontrol show partition": ok(CI_PARTITIONS),
                      "scontrol show config": ok(CI_CONFIG.replace("300 sec", min_job_age)),
                      "sacctmgr": Completed(1, "", NO_ACCOUNTING), "sshare": ok(""),
                      "sacct": Completed(1, "", "Slurm accounting storage is disabled\n")})


def gpu_cluster(**replace: str) -> FakeSlurm:
    answers = {"sinfo": ok(replace.get("sinfo", GPU_SINFO)),
               "scontrol show partition": ok(replace.get("partitions", GPU_PARTITIONS)),
               "scontrol show config": ok(GPU_CONFIG),
               "sacctmgr -nP show assoc": ok("proj-a\nproj-b\n"), "sacctmgr -nP show user": ok("proj-a\n"),
               "sacct": ok("4242|COMPLETED\n")}
    return FakeSlurm(answers)


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text,minutes", [("infinite", None), ("UNLIMITED", None), ("30", 30), ("30:00", 30),
                                          ("12:00:00", 720), ("2-00:00:00", 2880), ("1-12", 2160),
                                          ("1-02:30", 1590), ("n/a", None)])
def test_parse_time_limits(text, minutes):
    assert parse_time_minutes(text) == minutes


@pytest.mark.parametrize("gres,expected", [("gpu:1", (1, ())), ("gpu:a100:8(S:0-1)", (8, ("a100",))),
                                           ("gpu:v100:4,gpu:t4:2", (6, ("v100", "t4"))), ("(null)", (0, ())),
                                           ("gpu:2g.10gb:3(IDX:0,2,4)", (3, ("2g.10gb",))),
                                           ("mps:200,gpu:h100:4", (4, ("h100",))), ("", (0, ()))])
def test_parse_gres_counts_gpus_and_types(gres, expected):
    assert parse_gres(gres) == expected


def test_partitions_join_sinfo_node_groups_with_scontrol_limits():
    parts = {p.name: p for p in parse_partitions(GPU_SINFO, GPU_PARTITIONS)}
    gpu = parts["gpu"]
    assert gpu.default and gpu.up and gpu.nodes == 20 and gpu.gpus_per_node == 8 and gpu.gpu_types == ("a100",)
    assert gpu.time_limit_min == 2880 and gpu.max_nodes == 4
    assert gpu.nodes_with(gpus=8, mem_mb=1_000_000) == 4
    assert parts["h100"].allow_accounts == ("proj-b",)
    assert parts["cpu"].gpus_per_node == 0 and parts["cpu"].time_limit_min == 7 * 1440
    assert parts["mixed"].gpu_types == ("v100", "t4")
    # without scontrol (it failed), sinfo alone still gives the default flag and the time limit
    alone = {p.name: p for p in parse_partitions(CI_SINFO)}
    assert alone["debug"].default and alone["debug"].time_limit_min is None and alone["debug"].gpus_per_node == 1


def test_detect_reads_the_ci_cluster():
    facts = detect(ci_cluster(), user="root")
    assert [p.name for p in facts.partitions] == ["debug"]
    assert facts.cluster_name == "ci" and facts.slurm_version == "22.05.8"
    assert not facts.accounting and facts.accounts == [] and "no accounting" in facts.accounts_from
    assert facts.sacct_installed and not facts.sacct_ok and "disabled" in facts.sacct_detail
    assert facts.min_job_age_s == 300


def test_an_unreachable_controller_is_a_clear_error_not_a_hang():
    slurm = FakeSlurm({"sinfo": Completed(124, "", "`sinfo -h -e` did not answer within 10 s")})
    with pytest.raises(detect_module.SlurmUnavailable, match="did not answer.*scontrol ping"):
        detect(slurm, user="root")


def test_run_command_times_out():
    t0 = time.monotonic()
    res = detect_module.run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.5)
    assert res.returncode == 124 and "did not answer" in res.why() and time.monotonic() - t0 < 3


# ----------------------------------------------------------------------------- choosing
def test_choose_prefers_the_default_gpu_partition_and_takes_the_gpu_type_from_gres():
    s = choose(detect(gpu_cluster(), user="alice"))
    assert s.partition.value == "gpu" and "default partition, with GPUs" in s.partition.why
    assert s.gpu_model.value == "a100" and "gpu:a100:8" in s.gpu_model.why
    assert s.account.value == "proj-a" and "default account" in s.account.why  # two accounts, one default
    assert s.status_command.value == "sacct" and s.init_seconds.value == 20


def test_several_gpu_partitions_without_a_default_one_are_asked_or_refused():
    sinfo = GPU_SINFO.replace("gpu*|", "gpu|").replace("cpu|", "cpu*|")  # the default partition has no GPUs
    facts = detect(gpu_cluster(sinfo=sinfo, partitions=gpu_partitions(default="cpu")), user="alice")
    with pytest.raises(SetupError) as err:
        choose(facts)  # --yes: nothing to ask, no default
    assert "--partition" in str(err.value) and all(n in str(err.value) for n in ("gpu", "h100", "mixed"))
    asked = []

    def ask(question, choices, default):
        asked.append((question, [c for c, _ in choices], default))
        return "h100" if "partition" in question else (default or choices[0][0])

    s = choose(facts, ask=ask)
    assert s.partition.value == "h100" and s.gpu_model.value == "h100"
    assert asked[0] == ("Which GPU partition?", ["gpu", "h100", "mixed"], None)
    assert s.account.value == "proj-b"  # only proj-b may use h100: not asked


def test_the_prompt_takes_a_number_a_name_or_the_default(monkeypatch, capsys):
    from llava_core.cluster.commands import _ask

    choices = [("gpu", "20 nodes"), ("h100", "8 nodes")]
    answers = iter(["7", "2", "", "gpu"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert _ask("Which GPU partition?", choices, None) == "h100"  # "7" is refused, then "2"
    assert "one of: gpu, h100" in capsys.readouterr().out
    assert _ask("Which account?", choices, "gpu") == "gpu"  # Enter: the default
    assert _ask("Which account?", choices, None) == "gpu"

    def eof(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    with pytest.raises(SetupError, match="pass it as a flag"):
        _ask("Which GPU partition?", choices, None)


def test_a_partition_with_several_gpu_types_defaults_to_any():
    facts = detect(gpu_cluster(), user="alice")
    s = choose(facts, partition="mixed")
    assert s.gpu_model.value is None and "several GPU types" in s.gpu_model.why
    assert choose(facts, partition="mixed", gpu_model="t4").gpu_model.value == "t4"
    with pytest.raises(SetupError, match="v100, t4"):
        choose(facts, partition="mixed", gpu_model="a100")


def test_flags_are_checked_against_the_cluster():
    facts = detect(gpu_cluster(), user="alice")
    with pytest.raises(SetupError, match="no such partition.*gpu, h100, cpu, mixed"):
        choose(facts, partition="nosuch")
    with pytest.raises(SetupError, match="not one of your accounts"):
        choose(facts, account="someone-else")
    assert choose(facts, account="none").account.value is None


def test_squeue_is_chosen_with_a_first_check_the_plugin_accepts_when_sacct_fails():
    s = choose(detect(ci_cluster(), user="root"))
    assert s.status_command.value == "squeue" and "sacct does not work" in s.status_command.why
    assert s.init_seconds.value == 8 and 3 * 8 <= 300 and "MinJobAge (300 s) >= 3 x" in s.init_seconds.why
    assert s.partition.value == "debug" and s.account.value is None and s.gpu_model.value is None
    # a short MinJobAge: the first check comes sooner, so squeue is kept (MinJobAge >= 3 x init)
    assert choose(detect(ci_cluster("15 sec"), user="root")).init_seconds.value == 5
    with pytest.raises(SetupError, match="MinJobAge is 2 s"):
        choose(detect(ci_cluster("2 sec"), user="root"))
    with pytest.raises(SetupError, match="switch to sacct"):
        choose(detect(ci_cluster(), user="root"), init_seconds=120)


# ----------------------------------------------------------------------------- the profile
def test_rendered_profile_has_the_template_settings_and_reads_back():
    facts = detect(gpu_cluster(), user="alice")
    text = render(choose(facts), facts)
    data = yaml.safe_load(text)
    expected = {"executor": "slurm", "jobs": 100, "latency-wait": 60, "retries": 1, "rerun-incomplete": True,
                "printshellcmds": True, "keep-going": True, "show-failed-logs": True,
                "slurm-keep-successful-logs": True, "slurm-init-seconds-before-status-checks": 20}
    assert {k: data[k] for k in expected} == expected
    assert data["default-resources"] == {"slurm_partition": "gpu", "slurm_account": "proj-a", "gpu_model": "a100",
                                         "mem_mb": 4000, "runtime": 60, "cpus_per_task": 1}
    assert "slurm-status-command" not in data  # sacct works: the plugin's default
    assert ".snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log" in text
    assert not is_edited(text) and is_edited(text + "# mine\n") and is_edited(text.replace("jobs: 100", "jobs: 5"))
    ci = detect(ci_cluster(), user="root")
    ci_text = render(choose(ci), ci)
    ci_data = yaml.safe_load(ci_text)
    assert ci_data["slurm-status-command"] == "squeue" and ci_data["slurm-init-seconds-before-status-checks"] == 8
    assert "slurm_account" not in ci_data["default-resources"] and "gpu_model" not in ci_data["default-resources"]
    comments = " ".join(line.lstrip("# ") for line in ci_text.splitlines() if line.startswith("#"))
    assert "at least 3 x this value (24 s)" in comments and "MinJobAge (how long squeue shows" in comments


def test_the_generated_profile_carries_every_setting_of_the_template(root):
    """profiles/slurm/config.yaml documents the profile; setup writes the same settings, filled in."""
    template = yaml.safe_load((root / "profiles" / "slurm" / "config.yaml").read_text())
    facts = detect(gpu_cluster(), user="alice")
    generated = yaml.safe_load(render(choose(facts), facts))
    assert set(template) <= set(generated), set(template) - set(generated)
    assert set(template["default-resources"]) <= set(generated["default-resources"])
    same = {k: v for k, v in template.items() if k not in ("default-resources", "slurm-init-seconds-before-status-checks")}
    assert {k: generated[k] for k in same} == same


@pytest.mark.parametrize("value", ["debug", "gpu-long", "a100", "2g.10gb", "all", "input", "on", "1", "1e3", "max"])
def test_resource_values_survive_snakemakes_evaluation(value):
    """Snakemake evaluates resource strings as Python: `all` or `on` must be quoted to stay text."""
    written = yaml.safe_load(f"v: {resource_literal(value)}")["v"]
    assert evaluate_resource(written) == value
    if value in ("debug", "gpu-long", "a100"):
        assert resource_literal(value) == value


def _setup(args: list[str], env: dict[str, str], monkeypatch, facts) -> subprocess.CompletedProcess:
    """`llava-core cluster setup` in this process, on canned facts, with ``env`` set."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from llava_core.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(detect_module, "detect", lambda *a, **kw: facts)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["cluster", "setup", *args])
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def test_setup_writes_under_xdg_config_home_and_never_overwrites_edits(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    facts = detect(ci_cluster(), user="root")
    old_umask = os.umask(0o002)
    try:
        first = _setup(["--yes"], {"XDG_CONFIG_HOME": str(xdg)}, monkeypatch, facts)
    finally:
        os.umask(old_umask)
    path = xdg / "snakemake" / "slurm" / "config.yaml"
    assert first.returncode == 0, first.stderr
    assert f"wrote {path}" in first.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o664  # the umask's mode, not mkstemp's 0600
    for line in ("partition           debug", "status command      squeue", "first status check  8 s"):
        assert line in first.stdout, first.stdout
    assert not list(path.parent.glob("*.tmp"))
    # unchanged facts: nothing to do; changed ones: replaced, and the change is shown
    assert "unchanged" in _setup(["--yes"], {}, monkeypatch, facts).stdout
    again = _setup(["--yes", "--init-seconds", "5"], {}, monkeypatch, facts)
    assert again.returncode == 0 and "updated" in again.stdout
    assert "+slurm-init-seconds-before-status-checks: 5" in again.stdout
    # an edited profile is refused (with a diff), then replaced with --force (the edit kept aside)
    path.write_text(path.read_text().replace("jobs: 100", "jobs: 7"))
    refused = _setup(["--yes"], {}, monkeypatch, facts)
    assert refused.returncode == 1 and "was edited" in refused.stderr and "--force" in refused.stderr
    assert "-jobs: 7" in refused.stderr and "+jobs: 100" in refused.stderr
    assert "jobs: 7" in path.read_text()
    forced = _setup(["--yes", "--force"], {}, monkeypatch, facts)
    assert forced.returncode == 0 and "jobs: 100" in path.read_text()
    assert "jobs: 7" in (path.parent / "config.yaml.bak").read_text()
    # --name writes another profile beside it
    assert _setup(["--yes", "--name", "slurm-test"], {}, monkeypatch, facts).returncode == 0
    assert (xdg / "snakemake" / "slurm-test" / "config.yaml").is_file()


def test_setup_refuses_an_ambiguous_choice_under_yes(tmp_path, monkeypatch):
    sinfo = GPU_SINFO.replace("gpu*|", "gpu|")
    res = _setup(["--yes"], {"XDG_CONFIG_HOME": str(tmp_path)}, monkeypatch,
                 detect(gpu_cluster(sinfo=sinfo, partitions=gpu_partitions(default="none")), user="alice"))
    assert res.returncode == 1 and "--partition" in res.stderr and "h100" in res.stderr
    assert not (tmp_path / "snakemake").exists()


def test_snakemake_finds_the_written_profile_by_its_bare_name(tmp_path, monkeypatch):
    facts = detect(ci_cluster(), user="root")
    assert _setup(["--yes"], {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, monkeypatch, facts).returncode == 0
    code = "from snakemake.cli import get_profile_dir; print(get_profile_dir('slurm')[1])"
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}, check=True).stdout.strip()
    assert found == str(tmp_path / "xdg" / "snakemake" / "slurm" / "config.yaml")
    loaded = load_profile(Path(found))
    assert (loaded.partition, loaded.status_command, loaded.init_seconds) == ("debug", "squeue", 8)


# ----------------------------------------------------------------------------- fitting
def _plan(experiment: str) -> dict:
    return json.loads(run(["llava-core", "plan", experiment, "--results", "results"]).stdout)


def test_stages_that_do_not_fit_the_partition_are_named():
    local = {"all", "synthesize", "download", "summary"}
    one_gpu = {p.name: p for p in parse_partitions(CI_SINFO, CI_PARTITIONS)}["debug"]
    assert group_misfits(needs_from_plan(_plan("tiny"), local), one_gpu) == []
    lines = group_misfits(needs_from_plan(_plan("llava-v1.5-13b"), local), one_gpu)
    text = "\n".join(lines)
    assert "finetune asks 8 GPUs on each of 2 nodes: its nodes have at most 1" in text, text
    assert "pretrain asks 8 GPUs per node: its nodes have at most 1" in text, text
    assert "evaluate (12 jobs: eval/vqav2" in text and "64 CPUs" in text  # evaluations: 1 GPU, 8 CPUs, 64 GB
    a100 = {p.name: p for p in parse_partitions(GPU_SINFO, GPU_PARTITIONS)}["gpu"]
    assert group_misfits(needs_from_plan(_plan("llava-v1.5-13b"), local), a100) == []
    # a retry asks 1.5x memory and time: 720 GB per node still fits the four 1 TB A100 nodes
    assert group_misfits(needs_from_plan(_plan("llava-v1.5-13b"), local), a100, growth=1.5) == []


# ----------------------------------------------------------------------------- doctor pieces
def _doctor(tmp_path) -> Doctor:
    return Doctor("slurm", Workflow(workdir=tmp_path, results=tmp_path / "results", experiments=[]))


def _profile_with(tmp_path, facts, **flags):
    path = tmp_path / "config.yaml"
    path.write_text(render(choose(facts, **flags), facts))
    return load_profile(path)


def test_sacct_check_warns_with_the_squeue_fix_unless_the_profile_polls_with_squeue(tmp_path):
    facts = detect(ci_cluster(), user="root")
    doctor = _doctor(tmp_path)
    doctor.check_sacct(facts, _profile_with(tmp_path, facts))
    assert doctor.checks[-1].status == OK and "which the plugin keeps" in doctor.checks[-1].found
    doctor.check_sacct(facts, _profile_with(tmp_path, facts, status_command="sacct"))
    warn = doctor.checks[-1]
    assert warn.status == WARN and "wait forever" in warn.found
    assert "slurm-status-command: squeue" in warn.fix and "slurm-init-seconds-before-status-checks: 8" in warn.fix


def test_account_check(tmp_path):
    facts = detect(gpu_cluster(), user="alice")
    doctor = _doctor(tmp_path)
    doctor.check_account(facts, _profile_with(tmp_path, facts), facts.partition("gpu"))
    assert doctor.checks[-1].status == OK and "proj-a" in doctor.checks[-1].found
    bad = tmp_path / "bad.yaml"
    bad.write_text((tmp_path / "config.yaml").read_text().replace("slurm_account: proj-a", "slurm_account: nope"))
    doctor.check_account(facts, load_profile(bad), facts.partition("gpu"))
    assert doctor.checks[-1].status == FAIL and "--account <one of: proj-a, proj-b>" in doctor.checks[-1].fix
    ci = detect(ci_cluster(), user="root")
    doctor.check_account(ci, _profile_with(tmp_path, ci), ci.partition("debug"))
    assert doctor.checks[-1].status == OK and "no accounting" in doctor.checks[-1].found


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_probe_reaches_an_mlflow_server_and_a_sqlite_folder(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        res = probe_tracking_uri(f"http://127.0.0.1:{server.server_port}")
        assert res["ok"] and "HTTP 200" in res["detail"]
    finally:
        server.shutdown()
    assert probe_tracking_uri(f"http://127.0.0.1:{server.server_port}", timeout=2)["ok"] is False
    assert probe_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")["ok"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert probe_tracking_uri(f"sqlite:///{blocker}/sub/mlflow.db")["ok"] is False


# ----------------------------------------------------------------------------- the real cluster
# CI starts the cluster, so there a missing cluster is a failure, not a skip.
real_cluster = pytest.mark.skipif(not slurm_cluster_up() and not os.environ.get("CI"),
                                  reason="no SLURM cluster here: run .ci/slurm/install.sh && .ci/slurm/start.sh")
CHECKS = ["profile", "controller", "partition", "resources: tiny", "account", "sacct", "sbatch", "shared results",
          "llava-core on nodes", "mlflow", "disk"]


def _check(env: dict, *args: str) -> subprocess.CompletedProcess:
    # No time limit is asserted (a loaded CI machine varies); a hang is caught by the timeout.
    return run(["llava-core", "cluster", "check", *args], check=False, timeout=300, env=env)


@real_cluster
def test_setup_then_check_pass_on_the_real_cluster(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    setup = run(["llava-core", "cluster", "setup", "--yes"], env=env, timeout=60)
    assert "wrote" in setup.stdout and (tmp_path / "xdg" / "snakemake" / "slurm" / "config.yaml").is_file()
    proc = _check(env, "--results", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in CHECKS:
        assert f"│ {name} " in proc.stdout, (name, proc.stdout)
    assert "0 fail" in proc.stdout
    assert not (tmp_path / "results" / ".llava-core-check").exists()  # the token is cleaned up
    rows = json.loads(_check(env, "--results", str(tmp_path / "results"), "--json").stdout)
    assert [r["name"] for r in rows] == CHECKS and all(r["status"] == OK for r in rows), rows


@real_cluster
def test_check_fails_with_a_fix_for_a_missing_partition_and_an_unwritable_results_folder(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    run(["llava-core", "cluster", "setup", "--yes"], env=env, timeout=60)
    profile = tmp_path / "xdg" / "snakemake" / "slurm" / "config.yaml"
    broken = tmp_path / "broken" / "config.yaml"
    broken.parent.mkdir()
    broken.write_text(profile.read_text().replace("slurm_partition: debug", "slurm_partition: nosuch"))
    proc = _check(env, "--profile", str(broken), "--results", str(tmp_path / "results"), "--json")
    assert proc.returncode == 1
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["partition"]["status"] == FAIL and "'nosuch'" in rows["partition"]["found"]
    assert "llava-core cluster setup --partition <one of: debug>" in rows["partition"]["fix"]
    # results under a regular file: nobody can create it, and the fix says where to point results
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _check(env, "--results", str(blocker / "results"), "--json")
    assert proc.returncode == 1
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["sbatch"]["status"] == OK
    assert rows["shared results"]["status"] == FAIL and "results:" in rows["shared results"]["fix"]
    table = _check(env, "--results", str(blocker / "results"))
    assert table.returncode == 1 and "fail" in table.stdout and "shared results" in table.stdout
