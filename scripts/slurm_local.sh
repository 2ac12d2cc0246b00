#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the slurm tests and for trying the
# templates in slurm/.  Idempotent; needs root (it installs packages and writes /etc).
#
#   scripts/slurm_local.sh start    install slurm-wlm + munge if missing, write
#                                   /etc/slurm/slurm.conf, start munged, slurmctld,
#                                   slurmd, resume a DOWN/DRAIN node, wait until idle
#   scripts/slurm_local.sh stop     end slurmd, slurmctld, munged by their pids
#   scripts/slurm_local.sh status   print daemons and sinfo; exit 0 only if usable
#
# Environment: SLURM_LOCAL_WAIT (seconds to wait for the node, default 30),
#              SLURM_LOCAL_MEM_RESERVE_MB (memory kept from SLURM, default 1024).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
SPOOL_CTLD=/var/spool/slurmctld
SPOOL_D=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid
WAIT_S=${SLURM_LOCAL_WAIT:-30}
MEM_RESERVE_MB=${SLURM_LOCAL_MEM_RESERVE_MB:-1024}
NODE=$(hostname -s)

log() { echo "slurm_local: $*"; }
die() { echo "slurm_local: error: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (it installs packages, writes $CONF and starts daemons); try: sudo $0 $*"
}

# pid from a pid file if that process is alive and is the named daemon, else nothing.
alive_pid() {
    local f=$1 name=$2 pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && echo "$pid"
}

install_packages() {
    if command -v sbatch >/dev/null && command -v munged >/dev/null && command -v slurmctld >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "sbatch/munged missing and no apt-get; install slurm-wlm and munge by hand"
    log "installing slurm-wlm and munge with apt (takes a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
    command -v sbatch >/dev/null || die "apt-get installed slurm-wlm but sbatch is still not on PATH"
}

start_munge() {
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_KEY" && chmod 400 "$MUNGE_KEY"
    # munged refuses (or warns about) dirs not owned by the user it runs as.
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if alive_pid "$MUNGE_PID" munged >/dev/null; then return; fi
    runuser -u munge -- munged --force || die "munged did not start; see /var/log/munge/munged.log"
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged started but 'munge -n' fails; see /var/log/munge/munged.log"
}

real_memory_mb() {
    local total
    total=$(free -m | awk '/^Mem:/ {print $2}')
    [ "$total" -gt $((MEM_RESERVE_MB * 2)) ] && echo $((total - MEM_RESERVE_MB)) || echo $((total / 2))
}

render_conf() {
    cat <<EOF
# Written by scripts/slurm_local.sh: a one-node cluster on $NODE.
ClusterName=distlog-local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MailProg=/bin/true
# Short scheduling passes: a requeued job becomes eligible after cred_expire+1 s and
# then waits for the next pass (defaults: cred_expire=120, sched_interval=60).
SchedulerParameters=sched_interval=2,bf_interval=2
AuthInfo=cred_expire=10
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=60
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
Waittime=0
StateSaveLocation=$SPOOL_CTLD
SlurmdSpoolDir=$SPOOL_D
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
NodeName=$NODE CPUs=$(nproc) RealMemory=$(real_memory_mb) State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES OverSubscribe=FORCE:4 MaxTime=INFINITE State=UP
EOF
}

# Write slurm.conf; returns 0 when its content changed.
write_conf() {
    local new
    new=$(render_conf)
    mkdir -p "$CONF_DIR"
    if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then return 1; fi
    printf '%s\n' "$new" >"$CONF"
    log "wrote $CONF"
}

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }

start_slurm() {
    getent hosts "$NODE" >/dev/null || die "this host's name '$NODE' does not resolve; slurmctld needs it (SlurmctldHost=$NODE). Fix: echo '127.0.0.1 $NODE' >> /etc/hosts"
    mkdir -p "$SPOOL_CTLD" "$SPOOL_D" "$LOG_DIR" "$RUN_DIR"
    local changed=0
    write_conf && changed=1
    if alive_pid "$CTLD_PID" slurmctld >/dev/null; then
        [ "$changed" = 1 ] && { log "config changed: scontrol reconfigure"; scontrol reconfigure; }
    else
        slurmctld || die "slurmctld did not start; see $LOG_DIR/slurmctld.log"
    fi
    alive_pid "$SLURMD_PID" slurmd >/dev/null || slurmd || die "slurmd did not start; see $LOG_DIR/slurmd.log"
}

# Wait (bounded) for the node to be usable; resume it when DOWN/DRAIN.
wait_idle() {
    local state="" t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$WAIT_S" ]; do
        state=$(node_state || true)
        case "$state" in
            idle|mixed|allocated) log "node $NODE is $state (after $((SECONDS - t0)) s)"; return 0 ;;
            down*|drain*|fail*)
                log "node $NODE is $state: resuming"
                scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    echo "slurm_local: error: node $NODE not idle after ${WAIT_S}s (state: '${state:-sinfo failed}')." >&2
    echo "  expected: sinfo shows $NODE idle. See $LOG_DIR/slurmctld.log, $LOG_DIR/slurmd.log;" >&2
    echo "  reason: $(scontrol show node "$NODE" 2>/dev/null | grep -o 'Reason=.*' || echo unknown)" >&2
    echo "  fix: '$0 stop && $0 start', or raise SLURM_LOCAL_WAIT." >&2
    return 1
}

cmd_start() {
    need_root start
    local t0=$SECONDS
    install_packages
    start_munge
    start_slurm
    wait_idle || exit 1
    log "cluster up in $((SECONDS - t0)) s (partition debug, node $NODE, $(nproc) CPUs)"
}

stop_pidfile() {
    local name=$1 file=$2 pid
    if pid=$(alive_pid "$file" "$name"); then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        log "stopped $name (pid $pid)"
    else
        log "$name not running"
    fi
    rm -f "$file"
}

cmd_stop() {
    need_root stop
    stop_pidfile slurmd "$SLURMD_PID"
    stop_pidfile slurmctld "$CTLD_PID"
    stop_pidfile munged "$MUNGE_PID"
}

cmd_status() {
    local ok=0 pid name file
    for name in munged slurmctld slurmd; do
        case $name in munged) file=$MUNGE_PID ;; slurmctld) file=$CTLD_PID ;; slurmd) file=$SLURMD_PID ;; esac
        if pid=$(alive_pid "$file" "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; ok=1; fi
    done
    if command -v sinfo >/dev/null && sinfo -N -o '%N %P %T %c %m' 2>/dev/null; then :; else echo "sinfo: fails"; ok=1; fi
    return $ok
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
