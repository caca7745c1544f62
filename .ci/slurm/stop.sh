#!/usr/bin/env bash
# Stop the one-node CI SLURM cluster started by start.sh (slurmd, slurmctld,
# munged). Idempotent and never fails. Leaves the state folder (logs) in place;
# start.sh wipes it on the next start.
set -u

STATE="${SLURM_CI_DIR:-/tmp/slurm-ci}"

log() { echo "[slurm-ci] $*"; }

# stop_daemon NAME PIDFILE: SIGTERM via pid file; as a fallback (stale or lost
# pid file) pkill the daemon whose command line names this state folder
# (start.sh passes $STATE paths on every daemon's command line), so a system
# munged/slurmd that start.sh did not start is left alone. SIGKILL after ~10 s.
stop_daemon() {
    local name="$1" pidfile="$2" pid="" i
    local pattern="^(/usr/sbin/)?$name .*$STATE/"
    if [ -s "$pidfile" ]; then
        pid="$(cat "$pidfile" 2>/dev/null || true)"
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    if command -v pgrep >/dev/null 2>&1 && pgrep -f "$pattern" >/dev/null 2>&1; then
        pkill -TERM -f "$pattern" 2>/dev/null || true
    fi
    for i in $(seq 1 50); do
        if { [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; } \
            && ! { command -v pgrep >/dev/null 2>&1 && pgrep -f "$pattern" >/dev/null 2>&1; }; then
            rm -f "$pidfile" 2>/dev/null || true
            log "$name stopped"
            return 0
        fi
        sleep 0.2
    done
    log "$name did not stop on SIGTERM; sending SIGKILL"
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    command -v pkill >/dev/null 2>&1 && pkill -KILL -f "$pattern" 2>/dev/null || true
    rm -f "$pidfile" 2>/dev/null || true
    return 0
}

# Cancel leftover jobs quickly so their steps do not linger (best effort; only
# if our slurmctld is alive, else scancel just waits for its timeout).
ctld_pid="$(cat "$STATE/run/slurmctld.pid" 2>/dev/null || true)"
if [ -n "$ctld_pid" ] && kill -0 "$ctld_pid" 2>/dev/null && command -v scancel >/dev/null 2>&1; then
    timeout 5 scancel --user="$(id -un)" >/dev/null 2>&1 || true
fi

stop_daemon slurmd "$STATE/run/slurmd.pid"
stop_daemon slurmctld "$STATE/run/slurmctld.pid"
stop_daemon munged "$STATE/run/munged.pid"
exit 0
