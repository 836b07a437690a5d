#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for hpcml's slurm-labelled tests
# and for trying `hpcml submit` without a real cluster.
#
#   scripts/slurm-local.sh start    start munged, slurmctld, slurmd; wait until the node is idle
#   scripts/slurm-local.sh stop     stop the daemons this script started and delete the state dir
#   scripts/slurm-local.sh status   say whether it runs, and where config and logs are
#   scripts/slurm-local.sh env      print `export SLURM_CONF=...` (use: eval "$(scripts/slurm-local.sh env)")
#
# All commands are idempotent. Needs root (slurmd runs jobs as their user; munged
# needs its key). State, spool, logs and slurm.conf live in $HPCML_SLURM_DIR
# (default ${TMPDIR:-/tmp}/hpcml-slurm). Clients find the cluster through
# SLURM_CONF=$HPCML_SLURM_DIR/slurm.conf; hpcml's slurm tests set it themselves
# when it is unset and that file exists.
#
# Knobs (environment):
#   HPCML_SLURM_DIR   state directory (see above)
#   HPCML_SLURM_CPUS  CPUs the node advertises (default: nproc). More than the
#                     machine has is allowed (SlurmdParameters=config_overrides)
#                     and oversubscribes the cores: useful on a 2-core box.
#   HPCML_SLURM_PORT  first of the two TCP ports (default 6817; slurmd gets +1)
set -euo pipefail

DIR="${HPCML_SLURM_DIR:-${TMPDIR:-/tmp}/hpcml-slurm}"
CONF="$DIR/slurm.conf"
PORT="${HPCML_SLURM_PORT:-6817}"
export SLURM_CONF="$CONF"

log() { echo "slurm-local: $*" >&2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

munge_ok() { [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_ok; then return; fi
  id munge >/dev/null 2>&1 || { log "user 'munge' missing: install the munge package"; exit 1; }
  mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  # munged refuses to start as root; it daemonizes itself.
  su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid" \
    || /usr/sbin/munged --force
  for _ in $(seq 50); do munge_ok && return; sleep 0.1; done
  log "munged did not come up"
  exit 1
}

write_conf() {
  local host cpus mem
  host="$(hostname -s)"
  cpus="${HPCML_SLURM_CPUS:-$(nproc)}"
  # Leave some memory to the OS; Slurm refuses a node whose RealMemory exceeds what slurmd sees.
  mem="$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')"
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF" <<EOF
# Written by hpcml scripts/slurm-local.sh. Single node, no accounting, no cgroups.
ClusterName=hpcml-local
SlurmctldHost=$host
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=10
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=defer_batch_flag,sched_min_interval=100000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=pmi2
ReturnToService=2
JobRequeue=1
MaxArraySize=1001
MinJobAge=300
KillWait=5
SlurmdParameters=config_overrides
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

cmd_start() {
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
    log "already running (SLURM_CONF=$CONF)"
    cmd_wait_idle
    return
  fi
  start_munge
  write_conf
  pid_alive "$DIR/slurmctld.pid" || /usr/sbin/slurmctld -f "$CONF" -i
  pid_alive "$DIR/slurmd.pid" || /usr/sbin/slurmd -f "$CONF"
  cmd_wait_idle
  log "running: SLURM_CONF=$CONF, logs in $DIR/log/"
}

cmd_wait_idle() {
  local state=""
  for _ in $(seq 300); do
    state="$(node_state || true)"
    case "$state" in
      idle|mixed|allocated) return ;;
      down*|drain*)
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  log "node did not become idle (state '${state}'); see $DIR/log/"
  exit 1
}

kill_pidfile() {
  local f="$1"
  if pid_alive "$f"; then
    local pid
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

cmd_stop() {
  if [ -f "$CONF" ]; then
    scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
  fi
  kill_pidfile "$DIR/slurmd.pid"
  kill_pidfile "$DIR/slurmctld.pid"
  # munged is shared with anything else on the machine that uses munge: left running.
  rm -rf "$DIR"
  log "stopped"
}

cmd_status() {
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
    echo "running: SLURM_CONF=$CONF, node $(node_state), logs in $DIR/log/"
  else
    echo "not running (state dir $DIR)"
    return 3
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF='$CONF'" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
