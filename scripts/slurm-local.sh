#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for testing `imex-run sweep
# --slurm/--submit/--status` against the real thing (tests/slurm.rs).
#
#   scripts/slurm-local.sh start    install nothing; configure and start munged,
#                                   slurmctld and slurmd (idempotent)
#   scripts/slurm-local.sh stop     stop the daemons this script started
#   scripts/slurm-local.sh status   sinfo
#
# Needs root and Debian's packages: apt-get install -y slurm-wlm munge.
# This host is the controller and the only node: SlurmUser=root,
# proctrack/linuxproc and task/none (no cgroups needed, so it works in a
# container), select/cons_tres with cores as the consumable (memory is not
# tracked, so a job asking for --mem still starts). It writes
# /etc/slurm/slurm.conf only when that file is absent or was written by this
# script (a marker line): a real cluster's configuration is never touched.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# written by imex-run scripts/slurm-local.sh"
STATE=/var/lib/imex-slurm-local
PIDS=/run/imex-slurm-local

die() { echo "slurm-local: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

configure() {
    [ "$(id -u)" = 0 ] || die "must run as root (it starts munged, slurmctld and slurmd)"
    for tool in munged slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y slurm-wlm munge"
    done
    if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching it"
    fi
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$PIDS" /var/log/slurm
    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc)
    # Modest on purpose: memory is not a consumable here, it only has to be
    # no more than slurmd finds.
    memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) / 2 ))
    cat > "$CONF.new" <<EOF
$MARKER
ClusterName=imexlocal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.new" "$CONF"
}

start() {
    configure
    # munge: the package made a key; make one if it did not.
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge
    chown munge:munge /run/munge
    if ! munge -n >/dev/null 2>&1; then
        runuser -u munge -- munged
        touch "$PIDS/munged.ours"
    fi
    alive "$PIDS/slurmctld.pid" || slurmctld
    alive "$PIDS/slurmd.pid" || slurmd
    # Wait for the node to register, then make sure it takes jobs (a node
    # restarted under a running controller can come back DOWN).
    local host state
    host=$(hostname -s)
    for _ in $(seq 1 60); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
        case "$state" in
            idle*|mixed*|allocated*) echo "slurm-local: $host is $state"; return 0 ;;
            down*|drain*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 1
    done
    die "the node did not come up (state: ${state:-none}); see /var/log/slurm/"
}

stop() {
    local daemon
    for daemon in slurmd slurmctld; do
        if alive "$PIDS/$daemon.pid"; then
            kill "$(cat "$PIDS/$daemon.pid")"
            for _ in $(seq 1 20); do alive "$PIDS/$daemon.pid" || break; sleep 0.5; done
        fi
    done
    if [ -f "$PIDS/munged.ours" ]; then
        local pid
        pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
        rm -f "$PIDS/munged.ours"
    fi
    echo "slurm-local: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) die "usage: $0 start|stop|status" ;;
esac
