"""The ``llava-core cluster`` commands: ``setup`` writes the SLURM profile, ``check`` tests it.

Only :func:`add_cluster_parser` runs when the CLI builds its parser (every pipeline job does), so
this module imports nothing else of the package at the top; the commands import their modules
when they run.
"""

from __future__ import annotations

import argparse
import sys


def add_cluster_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``cluster setup`` and ``cluster check`` to the CLI's subcommands."""
    cluster = sub.add_parser("cluster", help="write this cluster's SLURM profile (setup) and test it with real "
                                             "jobs (check)")
    steps = cluster.add_subparsers(dest="cluster_command", required=True)

    sp = steps.add_parser("setup", help="detect partitions, account, GPU type and status polling; write the "
                                        "profile that `snakemake --profile slurm` reads")
    sp.add_argument("--name", default="slurm", help="profile name (default: slurm): written to "
                                                    "$XDG_CONFIG_HOME/snakemake/NAME/config.yaml")
    sp.add_argument("--partition", help="partition for the jobs (default: detected)")
    sp.add_argument("--account", help="SLURM account, or 'none' (default: detected)")
    sp.add_argument("--gpu-model", help="GPU type for --gpus=TYPE:N, or 'none' for any (default: the partition's)")
    sp.add_argument("--status-command", choices=("sacct", "squeue"), help="how the plugin polls job states "
                    "(default: sacct if it works, else squeue)")
    sp.add_argument("--init-seconds", type=int, help="first status check after this many seconds (default: 8 with "
                    "squeue, within MinJobAge/3; 20 with sacct)")
    sp.add_argument("-y", "--yes", action="store_true", help="ask nothing: take the detected defaults (an "
                    "ambiguous setting without a default is an error listing the choices)")
    sp.add_argument("--force", action="store_true", help="replace a profile you edited (kept as config.yaml.bak)")
    sp.add_argument("--dry-run", action="store_true", help="print the profile instead of writing it")
    sp.set_defaults(fn=cmd_cluster_setup)

    sp = steps.add_parser("check", help="test the profile with real jobs: sbatch, partition and resources, "
                                        "account, sacct, shared results, llava-core on nodes, MLflow, disk")
    sp.add_argument("--profile", default="slurm", help="profile name or path (default: slurm, as "
                                                       "`snakemake --profile slurm` finds it)")
    sp.add_argument("--configfile", default="config/config.yaml", help="the workflow config (default: "
                                                                       "config/config.yaml)")
    sp.add_argument("--results", help="results folder (default: the workflow config's)")
    sp.add_argument("--experiments", help="comma-separated presets (default: the workflow config's)")
    sp.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                    help="Hydra override, as the workflow's `overrides` (repeatable)")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the probe job (default: 60)")
    sp.add_argument("--json", action="store_true", help="print the checks as JSON instead of a table")
    sp.set_defaults(fn=cmd_cluster_check)


def _ask(question: str, choices: list[tuple[str, str]], default: str | None) -> str:
    """Ask on the terminal; a number or a name picks a choice, Enter takes the default."""
    print(question)
    for i, (value, desc) in enumerate(choices, 1):
        print(f"  {i}) {value}{'  ' + desc if desc else ''}{'  [default]' if value == default else ''}")
    values = [v for v, _ in choices]
    while True:
        try:
            answer = input(f"choice{f' [{default}]' if default else ''}: ").strip()
        except EOFError:
            from llava_core.cluster.choose import SetupError

            raise SetupError(f"no answer ({question} {', '.join(values)}); pass it as a flag, or --yes") from None
        if not answer and default is not None:
            return default
        if answer.isdigit() and 1 <= int(answer) <= len(values):
            return values[int(answer) - 1]
        if answer in values:
            return answer
        print(f"  one of: {', '.join(values)}")


def cmd_cluster_setup(args) -> int:
    """Detect, choose, print why, and write the profile (unless edited, or --dry-run)."""
    from llava_core.cluster.choose import SetupError, choose
    from llava_core.cluster.detect import SlurmUnavailable, detect
    from llava_core.cluster.profile import EditedProfile, profile_path, render, write_profile

    try:
        path = profile_path(args.name)
        facts = detect()
        interactive = not args.yes and sys.stdin.isatty()
        settings = choose(facts, partition=args.partition, account=args.account, gpu_model=args.gpu_model,
                          status_command=args.status_command, init_seconds=args.init_seconds,
                          ask=_ask if interactive else None)
    except (SlurmUnavailable, SetupError, ValueError) as e:
        print(f"llava-core cluster setup: error: {e}", file=sys.stderr)
        return 1
    print(facts.describe())
    for label, choice in settings.rows():
        value = "(none)" if choice.value is None else f"{choice.value} s" if label == "first status check" \
            else choice.value
        print(f"  {label:<19} {value!s:<12} {choice.why}")
    text = render(settings, facts, args.name)
    if args.dry_run:
        print(f"--- {path} (not written: --dry-run)\n{text}", end="")
        return 0
    try:
        outcome = write_profile(path, text, force=args.force)
    except EditedProfile as e:
        print(f"llava-core cluster setup: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"llava-core cluster setup: error: cannot write {path}: {e}", file=sys.stderr)
        return 1
    said = {"created": "wrote", "unchanged": "unchanged (already up to date):", "replaced": "updated",
            "replaced-edited": "replaced your edited profile (kept as config.yaml.bak):"}[outcome.action]
    print(f"{said} {outcome.path}")
    changed = [ln for ln in outcome.diff if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    if changed:
        print("what changed:\n" + "\n".join(f"  {ln}" for ln in changed))
    flag = "" if args.name == "slurm" else f" --profile {args.name}"
    print(f"next: llava-core cluster check{flag}, then snakemake --profile {args.name}")
    return 0


def cmd_cluster_check(args) -> int:
    """Run every check and print the table; exit status 1 if any failed."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from llava_core.cluster.doctor import Doctor, load_workflow, print_table

    try:
        workflow = load_workflow(Path(args.configfile), args.results, args.experiments, args.override)
    except (OSError, ValueError) as e:
        print(f"llava-core cluster check: error: {e}", file=sys.stderr)
        return 2
    doctor = Doctor(args.profile, workflow, timeout=args.timeout)
    checks = doctor.run()
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=1))
    else:
        print_table(checks)
    return 1 if doctor.failed else 0
