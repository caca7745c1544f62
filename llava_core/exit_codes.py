"""Exit statuses with a meaning beyond success and failure, shared by the launcher, the training
loop and tracking."""

#: A training stage that saved a checkpoint on SIGTERM/SIGUSR1 (SLURM preemption or time limit)
#: exits with this status (BSD's EX_TEMPFAIL): run it again to resume.
PREEMPTED = 75
