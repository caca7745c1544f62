"""``launch_command``: when and how a stage re-runs itself under torchrun (no srun needed)."""

from __future__ import annotations

import pytest

from llava_core.train.launch import first_host, launch_command

ARGV = ["finetune", "llava-v1.5-7b", "--results", "r", "--data-dir", "d", "--out", "o", "--init", "p"]
PY = "/env/bin/python"


def test_one_process_runs_in_place():
    assert launch_command(ARGV, gpus=1, nodes=1, env={}) is None
    assert launch_command(ARGV, gpus=0, nodes=1, env={}) is None


def test_already_a_worker_or_disabled_runs_in_place():
    assert launch_command(ARGV, gpus=8, nodes=1, env={"LOCAL_RANK": "0"}) is None
    assert launch_command([*ARGV, "--no-launch"], gpus=8, nodes=2, env={"SLURM_JOB_ID": "1"}) is None


def test_single_node_uses_standalone_torchrun():
    cmd = launch_command(ARGV, gpus=8, nodes=1, env={}, python=PY)
    assert cmd == [PY, "-m", "llava_core.train.launch", "torchrun", "--standalone", "--nnodes", "1",
                   "--nproc_per_node", "8", "-m", "llava_core.cli", *ARGV, "--no-launch"]
    # Inside a one-node SLURM job too: no second job step is needed.
    assert launch_command(ARGV, gpus=8, nodes=1, env={"SLURM_JOB_ID": "7", "SLURM_NNODES": "1"}, python=PY) == cmd


def test_multi_node_slurm_uses_srun_and_c10d_rendezvous_on_the_first_node():
    env = {"SLURM_JOB_ID": "4242", "SLURM_NNODES": "4", "SLURM_JOB_NODELIST": "gpu[007-009,012]"}
    cmd = launch_command(ARGV, gpus=8, nodes=2, env=env, python=PY)  # SLURM's node count wins
    assert cmd == ["srun", "--nodes", "4", "--ntasks-per-node", "1", "--kill-on-bad-exit=1",
                   PY, "-m", "llava_core.train.launch", "torchrun", "--nnodes", "4", "--rdzv_backend", "c10d",
                   "--rdzv_endpoint", "gpu007:29500", "--rdzv_id", "4242",
                   "--nproc_per_node", "8", "-m", "llava_core.cli", *ARGV, "--no-launch"]
    inside_step = launch_command(ARGV, gpus=8, nodes=4, env={**env, "SLURM_STEP_ID": "0"}, python=PY)
    assert inside_step[:7] == ["srun", "--nodes", "4", "--ntasks-per-node", "1", "--kill-on-bad-exit=1", "--overlap"]


def test_multi_node_without_slurm_is_an_error():
    with pytest.raises(ValueError, match="SLURM"):
        launch_command(ARGV, gpus=8, nodes=2, env={})


@pytest.mark.parametrize("nodelist, host", [
    ("node1", "node1"), ("node1,node2", "node1"), ("gpu[07-09,12]", "gpu07"), ("gpu[3,5]-ib,cpu1", "gpu3-ib"),
    ("rack[1-2]-n[01-04]", "rack1-n01"), ("a[10-11],b[1-2]", "a10"),
])
def test_first_host_of_a_slurm_nodelist(nodelist, host):
    assert first_host(nodelist) == host


def test_cli_has_no_launch_flag():
    from llava_core.cli import build_parser

    args = build_parser().parse_args(["pretrain", "tiny", "--data-dir", "d", "--out", "o", "--no-launch"])
    assert args.no_launch
