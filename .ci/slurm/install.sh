#!/usr/bin/env bash
# Install a single-node SLURM (Debian slurm-wlm) + munge for CI / local testing
# of the Snakemake SLURM profiles. Idempotent: does nothing if already installed.
# Nothing is started here; see start.sh.
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge)

have_all() {
    local p
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
    done
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null
}

if have_all; then
    echo "[slurm-ci] slurm + munge already installed: slurm $(dpkg-query -W -f='${Version}' slurmctld)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# Only refresh package lists when apt does not know the packages yet.
if ! apt-cache show slurmctld >/dev/null 2>&1 || ! apt-cache show munge >/dev/null 2>&1; then
    echo "[slurm-ci] apt-get update"
    $SUDO apt-get update
fi

echo "[slurm-ci] installing: ${PKGS[*]}"
if ! $SUDO apt-get install -y --no-install-recommends "${PKGS[@]}"; then
    echo "[slurm-ci] install failed; refreshing package lists and retrying once" >&2
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${PKGS[@]}"
fi

echo "[slurm-ci] installed: slurm $(dpkg-query -W -f='${Version}' slurmctld)"
