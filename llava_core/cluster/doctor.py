"""``llava-core cluster check``: is this cluster, with this profile, ready for the workflow?

Each check reports ok, warn or fail, what it found, and a fix for anything not ok. What only a
job can tell is asked of one real job (:mod:`probe`): that sbatch works with the profile's
partition and account, that the results folder is shared with the compute nodes (the job
writes a token there, this host reads it), that the nodes run the same ``llava-core`` and
reach the MLflow store. The job is submitted early and waited for last, with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from llava_core.cluster.detect import ClusterFacts, Partition, Runner, SlurmUnavailable, detect, run_command
from llava_core.cluster.fit import JobNeed, group_misfits, needs_from_plan, sbatch_test_args
from llava_core.cluster.profile import LoadedProfile, find_profile, load_profile
from llava_core.cluster.submit import JobResult, submit, wait

OK, WARN, FAIL = "ok", "warn", "fail"
DONE = "PROBE-END"
SETUP = "llava-core cluster setup"


@dataclass
class Check:
    """One row of the table."""

    name: str
    status: str
    found: str
    fix: str = ""


@dataclass
class Workflow:
    """What ``snakemake --profile slurm`` would run here (from ``config/config.yaml`` and the flags)."""

    workdir: Path
    results: Path
    experiments: list[str]
    overrides: list[str] = field(default_factory=list)
    llava: list[str] = field(default_factory=lambda: ["llava-core"])
    local_rules: set[str] = field(default_factory=set)
    retry_growth: float | None = None


def _as_list(value, split) -> list[str]:
    if isinstance(value, str):
        return [v for v in split(value) if v]
    return [str(v) for v in value or []]


def load_workflow(configfile: Path, results: str | None = None, experiments: str | None = None,
                  overrides: list[str] | None = None, workdir: Path | None = None) -> Workflow:
    """The workflow's config as Snakemake reads it (results and experiments, overridable), plus what
    the Snakefile says about local rules and retries."""
    import yaml

    workdir = (workdir or Path.cwd()).resolve()
    path = configfile if configfile.is_absolute() else workdir / configfile
    cfg = {}
    if path.is_file():
        cfg = yaml.safe_load(path.read_text()) or {}
    elif results is None or experiments is None:
        raise FileNotFoundError(f"{path}: no workflow config here; run from the workflow folder (where the Snakefile "
                                "is) or give --results and --experiments")
    res = Path(results or cfg.get("results", "results"))
    exps = _as_list(experiments if experiments is not None else cfg.get("experiments", ["tiny"]),
                    lambda s: [x.strip() for x in s.split(",")])
    overs = _as_list(cfg.get("overrides", []), shlex.split) + list(overrides or [])
    snakefile = workdir / "Snakefile"
    local: set[str] = set()
    if snakefile.is_file():
        m = re.search(r"^localrules:\s*\n((?:[ \t]+\w+,?[ \t]*\n)+)", snakefile.read_text(), re.M)
        local = set(re.findall(r"\w+", m.group(1))) if m else set()
    growth = None
    common = workdir / "workflow" / "rules" / "common.smk"
    if common.is_file():
        m = re.search(r"^RETRY_GROWTH\s*=\s*([\d.]+)", common.read_text(), re.M)
        growth = float(m.group(1)) if m else None
    return Workflow(workdir=workdir, results=res if res.is_absolute() else workdir / res, experiments=exps,
                    overrides=overs, llava=shlex.split(str(cfg.get("llava_core", "llava-core"))), local_rules=local,
                    retry_growth=growth)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class Doctor:
    """Runs the checks; :meth:`run` returns the rows."""

    def __init__(self, profile: str, workflow: Workflow, runner: Runner = run_command, timeout: float = 60.0):
        self.profile_arg, self.wf, self.runner, self.timeout = profile, workflow, runner, timeout
        self.checks: list[Check] = []

    def add(self, name: str, status: str, found: str, fix: str = "") -> Check:
        check = Check(name, status, found, fix if status != OK else "")
        self.checks.append(check)
        return check

    # ------------------------------------------------------------------------- the run
    def run(self) -> list[Check]:
        profile = self.check_profile()
        try:
            facts = detect(self.runner)
        except SlurmUnavailable as e:
            self.add("controller", FAIL, str(e), "run this on the cluster's login node; if slurmctld is down, ask "
                                                  "your admins (`scontrol ping` says which controller is down)")
            facts = None
        else:
            self.add("controller", OK, f"{facts.describe()}; {len(facts.partitions)} partition(s)")
        experiments = self.load_experiments()
        part = self.check_partition(facts, profile) if facts and profile else None
        # The job runs while the other checks do.
        probe = self.start_probe(profile, experiments) if part is not None and part.up else None
        for exp, info in experiments.items():
            self.check_fit(exp, info, part, facts, profile)
        if facts and profile:
            self.check_account(facts, profile, part)
            self.check_sacct(facts, profile)
        self.check_probe(probe)
        self.check_disk(experiments)
        return self.checks

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    # ------------------------------------------------------------------------- profile
    def check_profile(self) -> LoadedProfile | None:
        path = find_profile(self.profile_arg, self.wf.workdir)
        if path is None:
            self.add("profile", FAIL, f"no profile {self.profile_arg!r} where `snakemake --profile "
                                      f"{self.profile_arg}` looks", f"run `{SETUP}`")
            return None
        try:
            profile = load_profile(path)
        except (OSError, ValueError) as e:
            self.add("profile", FAIL, f"{path}: {e}", f"fix the YAML, or rerun `{SETUP} --force`")
            return None
        where = f"`snakemake --profile {self.profile_arg}` reads {path}"
        what = ", ".join(f"{k} {v}" for k, v in (("partition", profile.partition), ("account", profile.account),
                                                  ("gpu_model", profile.gpu_model)) if v)
        if profile.get("executor") != "slurm":
            self.add("profile", FAIL, f"{where}; its executor is {profile.get('executor')!r}",
                     f"set `executor: slurm`, or rerun `{SETUP} --force`")
        else:
            self.add("profile", OK, f"{where} ({what or 'default partition, no account'}"
                                    f"{'; edited by hand' if profile.edited else ''})")
        return profile

    # ------------------------------------------------------------------------- experiments
    def _llava(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [*self.wf.llava, *args, *[a for o in self.wf.overrides for a in ("-o", o)]]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=self.wf.workdir)
        except (OSError, subprocess.TimeoutExpired) as e:
            return subprocess.CompletedProcess(cmd, 127, "", str(e))

    def load_experiments(self) -> dict[str, dict]:
        """Each experiment's plan and resolved config (``llava-core plan`` / ``config``), or its error."""
        out = {}
        for exp in self.wf.experiments:
            plan = self._llava("plan", exp, "--results", str(self.wf.results))
            conf = self._llava("config", exp)
            if plan.returncode or conf.returncode:
                bad = plan if plan.returncode else conf
                lines = [ln for ln in (bad.stderr or bad.stdout).splitlines() if ln.strip()]
                out[exp] = {"error": lines[-1] if lines else f"exit status {bad.returncode}"}
                continue
            out[exp] = {"plan": json.loads(plan.stdout), "config": json.loads(conf.stdout)}
        return out

    def tracking_uris(self, experiments: dict[str, dict]) -> list[str]:
        from llava_core.tracking import default_tracking_uri

        uris: list[str] = []
        for info in experiments.values():
            if "config" in info:
                uri = info["config"]["tracking"]["tracking_uri"] or default_tracking_uri(self.wf.results)
                if uri not in uris:
                    uris.append(uri)
        return uris

    # ------------------------------------------------------------------------- partition
    def check_partition(self, facts: ClusterFacts, profile: LoadedProfile) -> Partition | None:
        name = profile.partition or next((p.name for p in facts.partitions if p.default), None)
        names = ", ".join(p.name for p in facts.partitions)
        if name is None:
            self.add("partition", FAIL, "the profile names no partition and the cluster has no default one",
                     f"rerun `{SETUP} --partition <one of: {names}>`")
            return None
        part = facts.partition(name)
        if part is None:
            self.add("partition", FAIL, f"{name!r} (from the profile) does not exist here; partitions: {names}",
                     f"rerun `{SETUP} --partition <one of: {names}> --force`, or fix slurm_partition in "
                     f"{profile.path}")
            return None
        if not part.up:
            self.add("partition", FAIL, f"{name} is not up ({part.summary()})",
                     f"ask your admins, or choose another: `{SETUP} --partition <one of: {names}>`")
            return part
        self.add("partition", OK, f"{name}{' (default)' if part.default else ''}: {part.summary()}")
        return part

    def check_fit(self, exp: str, info: dict, part: Partition | None, facts: ClusterFacts | None,
                  profile: LoadedProfile | None) -> None:
        name = f"resources: {exp}"
        if "error" in info:
            self.add(name, FAIL, f"`llava-core plan {exp}` failed: {info['error']}",
                     "check the experiment name and overrides (`llava-core config EXPERIMENT`)")
            return
        if part is None:
            self.add(name, WARN, "not compared: no usable partition", "see the partition check")
            return
        needs = needs_from_plan(info["plan"], self.wf.local_rules)
        bad = group_misfits(needs, part)
        if bad:
            fits = [p.name for p in facts.partitions if p is not part and not group_misfits(needs, p)]
            shrink = ("shrink the stages, e.g. --config overrides=\"finetune.resources.gpus=4\" (docs/slurm.md, "
                      "section 2), or send a rule to another partition with --set-resources RULE:slurm_partition=P")
            fix = (f"use a partition where every stage fits ({', '.join(fits)}): `{SETUP} --partition {fits[0]} "
                   f"--force`; or {shrink}" if fits else f"no partition here fits every stage: {shrink}")
            self.add(name, FAIL, f"jobs that do not fit {part.name}:\n" + "\n".join(bad), fix)
            return
        refused = self._test_only(needs, part, profile)
        if refused:
            self.add(name, FAIL, f"sbatch --test-only refuses: {refused}",
                     "the partition's limits (QOS, account limits) reject these requests: ask your admins, or "
                     "shrink the stages with --config overrides=...")
            return
        biggest = max(needs, key=lambda n: (n.nodes * n.gpus, n.mem_mb, n.runtime_min))
        found = f"{len(needs)} cluster jobs fit {part.name} (largest: {biggest.job} {biggest.describe()})"
        grown = group_misfits(needs, part, 1 + self.wf.retry_growth) if self.wf.retry_growth else []
        if grown:
            self.add(name, WARN, f"{found}, but a retry asks {1 + self.wf.retry_growth:g}x memory and time: "
                                 + "; ".join(grown),
                     "a failed job of these rules cannot be retried there; lower its mem_mb/runtime in the preset "
                     "if that leaves room")
        else:
            self.add(name, OK, found)

    def _test_only(self, needs: list[JobNeed], part: Partition, profile: LoadedProfile) -> str:
        """Ask the scheduler (sbatch --test-only) about each distinct request; '' if all are accepted."""
        seen = set()
        for need in needs:
            if need.shape() in seen:
                continue
            seen.add(need.shape())
            cmd = ["sbatch", "--test-only", "-p", part.name, *(["-A", profile.account] if profile.account else []),
                   *sbatch_test_args(need, profile.gpu_model), "--wrap", "true"]
            res = self.runner(cmd, 15.0)
            if not res.ok:
                return f"{need.job} ({need.describe()}): {res.why()}"
        return ""

    # ------------------------------------------------------------------------- account, sacct
    def check_account(self, facts: ClusterFacts, profile: LoadedProfile, part: Partition | None) -> None:
        acct = profile.account
        listed = ", ".join(facts.accounts)
        if acct is None:
            if not facts.accounting or not facts.accounts:
                self.add("account", OK, f"none set; {facts.accounts_from}")
            else:
                self.add("account", WARN, f"none set; your accounts: {listed} (the plugin guesses one from sacct)",
                         f"`{SETUP} --account <one of: {listed}>`")
            return
        if not facts.accounting:
            self.add("account", WARN, f"{acct} set, but {facts.accounts_from}",
                     f"remove slurm_account from {profile.path}, or rerun `{SETUP} --force`")
        elif facts.accounts and acct not in facts.accounts:
            self.add("account", FAIL, f"{acct} is not one of your accounts ({listed}; {facts.accounts_from})",
                     f"`{SETUP} --account <one of: {listed}> --force`")
        elif part is not None and part.allow_accounts and acct not in part.allow_accounts:
            self.add("account", FAIL, f"{acct} may not use partition {part.name} (allowed: "
                                      f"{', '.join(part.allow_accounts)})", f"`{SETUP} --force` with another account")
        elif not facts.accounts:
            self.add("account", WARN, f"{acct} set, but {facts.accounts_from}: cannot confirm it",
                     "if sbatch below works, it is accepted")
        else:
            self.add("account", OK, f"{acct} ({facts.accounts_from})")

    def check_sacct(self, facts: ClusterFacts, profile: LoadedProfile) -> None:
        age, init = facts.min_job_age_s, profile.init_seconds
        if facts.sacct_ok:
            self.add("sacct", OK, f"sacct answers; the profile polls with {profile.status_command or 'sacct'}")
            return
        if profile.status_command == "squeue":
            if age is not None and age >= 3 * init or not facts.sacct_installed:
                kept = (f"which the plugin keeps: MinJobAge {age} s >= 3 x {init} s (the first status check)"
                        if facts.sacct_installed else "(sacct is not installed)")
                self.add("sacct", OK, f"sacct fails ({facts.sacct_detail}); the profile polls with squeue, {kept}")
            else:
                self.add("sacct", WARN, f"sacct fails ({facts.sacct_detail}) and the plugin will not keep squeue: "
                                        f"it needs MinJobAge ({age} s) >= 3 x {init} s, so it switches to sacct "
                                        "and Snakemake waits forever",
                         f"set `slurm-init-seconds-before-status-checks: {max(1, (age or 0) // 3)}` in "
                         f"{profile.path}" if age and age >= 3 else "ask your admins to raise MinJobAge")
            return
        self.add("sacct", WARN, f"sacct fails ({facts.sacct_detail}) and the profile leaves job status to sacct: "
                                "Snakemake would wait forever for the jobs' states",
                 f"add `slurm-status-command: squeue` and `slurm-init-seconds-before-status-checks: "
                 f"{min(8, max(1, (age or 24) // 3))}` to {profile.path} (the plugin keeps squeue while MinJobAge, "
                 f"{age} s here, >= 3 x that), or rerun `{SETUP} --force`")

    # ------------------------------------------------------------------------- the probe job
    def start_probe(self, profile: LoadedProfile, experiments: dict[str, dict]) -> dict:
        """Write the probe job's files and submit it; returns what :meth:`check_probe` needs."""
        from llava_core.cluster import probe as probe_module

        token = uuid.uuid4().hex[:12]
        folder = self.wf.workdir / ".snakemake" / "llava-core-check" / token
        token_file = self.wf.results / ".llava-core-check" / f"{token}.txt"
        probe = {"token": token, "folder": folder, "token_file": token_file, "result": None, "error": "",
                 "results_error": ""}
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            probe["error"] = f"cannot create {folder}: {e.strerror}"
            return probe
        try:
            token_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # the job will try too; the shared-results row reports both
            probe["results_error"] = f"this host cannot create {token_file.parent}: {e.strerror}"
        shutil.copy2(probe_module.__file__, folder / "probe.py")
        py = sys.executable
        args = ["--token", token, "--token-file", str(token_file),
                *[x for uri in self.tracking_uris(experiments) for x in ("--mlflow", uri)]]
        script = folder / "probe.sh"
        script.write_text(
            "#!/bin/bash\n"
            'echo "PROBE-START host=$(hostname)"\n'
            f'if [ ! -x {shlex.quote(py)} ]; then echo "PROBE-NO-PYTHON"; echo "{DONE} rc=127"; exit 3; fi\n'
            f"{shlex.quote(py)} {shlex.quote(str(folder / 'probe.py'))} {shlex.join(args)}\n"
            f'echo "{DONE} rc=$?"\n')
        sbatch_args = ["--time=2", "--mem=500", "--nodes=1", "--ntasks=1", "--cpus-per-task=1"]
        sbatch_args += ["-p", profile.partition] if profile.partition else []
        sbatch_args += ["-A", profile.account] if profile.account else []
        probe["result"] = submit(script, folder / "probe.out", sbatch_args, self.runner, self.wf.workdir)
        return probe

    def check_probe(self, probe: dict | None) -> None:
        """Wait for the probe job; the sbatch, shared-results, version and MLflow rows."""
        later = ["shared results", "llava-core on nodes", "mlflow"]
        if probe is None or probe["result"] is None:
            why = probe["error"] if probe else "not tried: no usable profile, controller or partition"
            self.add("sbatch", FAIL, why, "fix the rows above, then rerun" if probe is None else
                     "the workflow folder and the results folder must be writable")
            for name in later:
                self.add(name, WARN, "not tested: no probe job ran", "fix the sbatch row first")
            return
        result = wait(probe["result"], probe["folder"] / "probe.out", self.timeout, DONE, self.runner)
        data = self._probe_json(result.output)
        self._sbatch_row(result, data)
        if data is not None:
            self._shared_results_row(probe, data)
            self._version_row(data)
            self._mlflow_rows(data)
        else:
            why = "the probe job did not run" if result.output is None else "the probe job did not finish"
            for name in later:
                if name == "llava-core on nodes" and "PROBE-NO-PYTHON" in (result.output or ""):
                    self.add(name, FAIL, f"{sys.executable} does not exist on {result.node or 'the compute node'}",
                             "install the virtual environment on a file system the compute nodes share (same "
                             "path), e.g. inside the workflow folder")
                else:
                    self.add(name, WARN, f"not tested: {why}", "fix the sbatch row first")
        self._cleanup(probe, keep=self.failed)

    def _probe_json(self, output: str | None) -> dict | None:
        from llava_core.cluster.probe import PREFIX

        for line in (output or "").splitlines():
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX):])
        return None

    def _sbatch_row(self, r: JobResult, data: dict | None) -> None:
        where = f"job {r.job_id}" if r.job_id else "the probe job"
        if r.state == "SUBMIT_FAILED":
            self.add("sbatch", FAIL, f"sbatch refused the probe job: {r.error}",
                     "check the partition and account in the profile (`sinfo`, `sacctmgr show assoc user=$USER`); "
                     f"rerun `{SETUP} --force`")
        elif data is not None:
            self.add("sbatch", OK, f"{where} ran on {data['host']} ({r.seconds:.1f} s from submission to its output)")
        elif r.timed_out:
            self.add("sbatch", WARN, f"{where} was still {r.state} after {self.timeout:g} s"
                                     f"{f' (reason: {r.reason})' if r.reason and r.reason != 'None' else ''}; "
                                     "cancelled", "the cluster is busy: rerun with a longer --timeout (e.g. 600)")
        elif r.output is None:
            self.add("sbatch", FAIL, f"{where} ended {r.state} (exit {r.exit_code or '?'}) on {r.node or '?'}, but its "
                                     f"output is not visible here ({self.wf.workdir}/.snakemake/...)",
                     "the workflow folder must be on a file system the compute nodes share (Snakemake runs every "
                     "job there): clone the repository there")
        else:
            tail = " | ".join(r.output.strip().splitlines()[-3:])
            self.add("sbatch", FAIL, f"{where} ended {r.state} (exit {r.exit_code or '?'}) on {r.node or '?'}: {tail}",
                     "see the job's output in .snakemake/llava-core-check/")

    def _shared_results_row(self, probe: dict, data: dict) -> None:
        import time

        token_file: Path = probe["token_file"]
        if "token_error" in data or probe["results_error"]:
            self.add("shared results", FAIL, "; ".join(filter(None, [
                probe["results_error"], f"a job on {data['host']} cannot write under {self.wf.results}: "
                                        f"{data['token_error']}" if "token_error" in data else ""])),
                     "the results folder must be writable from compute nodes: set `results:` in config/config.yaml "
                     "(or --config results=...) to a shared folder you may write")
            return
        deadline = time.monotonic() + 8.0  # NFS may show a file written elsewhere a moment later
        while not token_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.3)
        seen = token_file.read_text() if token_file.is_file() else None
        if seen == probe["token"]:
            self.add("shared results", OK, f"a job on {data['host']} wrote {token_file.parent}/<token>.txt; "
                                           "read back here")
        else:
            self.add("shared results", FAIL, f"a job on {data['host']} wrote {token_file}, but this host "
                                             f"{'cannot see it' if seen is None else 'reads something else'}: "
                                             f"{self.wf.results} is not shared with the compute nodes",
                     "put the results folder on a shared file system: set `results:` in config/config.yaml "
                     "(or --config results=/shared/path)")

    def _version_row(self, data: dict) -> None:
        import llava_core
        from llava_core.cluster.probe import source_digest

        here_pkg = Path(llava_core.__file__).resolve().parent
        here = (getattr(llava_core, "__version__", None), source_digest(here_pkg))
        cli_here = shutil.which("llava-core")
        if "import_error" in data:
            self.add("llava-core on nodes", FAIL, f"{data['python']} on {data['host']} cannot import llava_core: "
                                                  f"{data['import_error']}",
                     "install the package in a virtual environment on a shared file system (pip install -e .) and "
                     "run snakemake from it")
            return
        there = (data.get("version"), data.get("digest"))
        if there != here:
            self.add("llava-core on nodes", FAIL, f"{data['host']} runs llava-core {there[0]} (source {there[1]}, "
                                                  f"{data.get('package')}); here {here[0]} (source {here[1]}, {here_pkg})",
                     "the nodes must import this checkout: install it editable (pip install -e .) in a virtual "
                     "environment on a shared file system")
            return
        if data.get("llava_core_cli") is None:
            self.add("llava-core on nodes", FAIL, f"`llava-core` is not on the PATH of a job on {data['host']} "
                                                  "(every rule calls it)",
                     "activate the virtual environment before `snakemake` (jobs inherit its PATH), or set "
                     f"`llava_core: {cli_here or '/path/to/llava-core'}` in config/config.yaml")
            return
        self.add("llava-core on nodes", OK, f"{there[0]} (source {there[1]}) from {data.get('package')}, "
                                            f"python {data['python']}, on {data['host']}: same as here")

    def _mlflow_rows(self, data: dict) -> None:
        for uri, res in data.get("mlflow", {}).items():
            if res["ok"]:
                self.add("mlflow", OK, f"{uri}: {res['detail']} (from {data['host']})")
            elif res["ok"] is None:
                self.add("mlflow", WARN, f"{uri}: {res['detail']}", "make sure compute nodes can reach it")
            else:
                server = uri.startswith(("http://", "https://"))
                self.add("mlflow", FAIL, f"{uri}: {res['detail']} (from {data['host']})",
                         "start the server with --host 0.0.0.0 on a host the compute nodes reach and use that "
                         "host's name in tracking.tracking_uri (docs/slurm.md, section 3)" if server else
                         "the store's folder must be writable from compute nodes: put the results folder on a "
                         "shared file system you may write, or use an MLflow server (tracking.tracking_uri)")

    def _cleanup(self, probe: dict, keep: bool) -> None:
        token_file: Path = probe["token_file"]
        with contextlib.suppress(OSError):
            token_file.unlink(missing_ok=True)
            token_file.parent.rmdir()
        if not keep:
            shutil.rmtree(probe["folder"], ignore_errors=True)

    # ------------------------------------------------------------------------- disk
    def check_disk(self, experiments: dict[str, dict]) -> None:
        need: dict[str, float | None] = {}
        for info in experiments.values():
            if "config" not in info:
                continue
            data = info["config"]["data"]
            download = next(st for st in info["plan"]["stages"].values() if st["kind"] == "download")
            lock = Path(download["dir"]) / "download.lock.json"
            lock = lock if lock.is_absolute() else self.wf.workdir / lock
            if not lock.is_file():
                need[data["name"]] = data.get("disk_gb")
        where = _existing_parent(self.wf.results)
        free_gb = shutil.disk_usage(where).free / 1e9
        if not need:
            self.add("disk", OK, f"{free_gb:,.0f} GB free at {where}; the data is already downloaded"
                     if experiments else f"{free_gb:,.0f} GB free at {where}")
            return
        unknown = [d for d, gb in need.items() if gb is None]
        total = sum(gb for gb in need.values() if gb)
        parts = ", ".join(f"{d} ~{gb:g} GB" for d, gb in need.items() if gb)
        found = f"{free_gb:,.1f} GB free at {where}; the data needs {parts or 'an unknown amount'} (data.disk_gb)"
        if free_gb < total:
            self.add("disk", FAIL, found, "free space, or point `results:` in config/config.yaml at a bigger shared "
                                          "file system (checkpoints need more on top)")
        elif unknown:
            self.add("disk", WARN, f"{found}; no estimate for {', '.join(unknown)}",
                     "add `disk_gb:` to the data preset (config/data/<name>.yaml)")
        else:
            self.add("disk", OK, found)


def print_table(checks: list[Check], file=None) -> None:
    """The checks as a table (rich), and a one-line verdict."""
    from rich.console import Console
    from rich.table import Table

    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() else None if (file or sys.stdout).isatty() else 160
    console = Console(file=file, width=width, highlight=False, soft_wrap=False)
    table = Table(title="llava-core cluster check", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("found", ratio=3, overflow="fold")
    table.add_column("fix", ratio=2, overflow="fold")
    style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for c in checks:
        table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.found, c.fix)
    console.print(table)
    fails = sum(c.status == FAIL for c in checks)
    warns = sum(c.status == WARN for c in checks)
    console.print(f"{len(checks)} checks: {len(checks) - fails - warns} ok, {warns} warn, {fails} fail"
                  + ("" if fails else " -- ready: snakemake --profile slurm"))
