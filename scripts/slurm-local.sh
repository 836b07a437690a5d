#!/usr/bin/env bash
# A local Slurm cluster on this machine, for hpcml's slurm- and multinode-labelled
# tests and for trying `hpcml submit` without a real cluster.
#
#   scripts/slurm-local.sh start [--nodes N]
#                                   start munged, slurmctld and one slurmd (N = 1, the default: the
#                                   node is this host) or N slurmd, each in its own network and UTS
#                                   namespace (node n1..nN, address 169.254.77.11.., own hostname);
#                                   wait until every node is idle
#   scripts/slurm-local.sh stop     stop the daemons this script started, remove the namespaces and
#                                   links it made, delete the state dir
#   scripts/slurm-local.sh status   say whether it runs, the nodes, where config and logs are
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
#   HPCML_SLURM_NET   multi-node only: the /24 the nodes live on, link-local and
#                     never routed off the machine (default 169.254.77: bridge .1,
#                     node k at .(10+k))
#   HPCML_SLURM_NETNAME multi-node only: prefix of the namespaces (<prefix>-n1 ..),
#                     bridge (<prefix>br) and host-side veths (<prefix>v1 ..)
#                     (default hpcml; at most 8 characters)
#
# Multi-node (--nodes N > 1) needs `ip netns`, veth and bridge links and
# `unshare --uts --mount` (root). Each node sees $HPCML_SLURM_DIR/hosts as
# /etc/hosts (n1..nN and this host at the bridge address), so `mpiexec` works
# inside an allocation. Where they are refused, start prints one line saying so,
# writes it to $HPCML_SLURM_DIR/refused (the multinode tests skip with it) and
# exits 4. Each node advertises HPCML_SLURM_CPUS CPUs (default: nproc / N, at
# least 1) and 90 % of the memory / N. slurmd is started with `nsenter --net=`
# rather than `ip netns exec`, which remounts /sys and leaves slurmd without
# /sys/fs/cgroup.
set -euo pipefail

DIR="${HPCML_SLURM_DIR:-${TMPDIR:-/tmp}/hpcml-slurm}"
CONF="$DIR/slurm.conf"
PORT="${HPCML_SLURM_PORT:-6817}"
NET="${HPCML_SLURM_NET:-169.254.77}"
NETNAME="${HPCML_SLURM_NETNAME:-hpcml}"
BRIDGE="${NETNAME}br"
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
  local n="$1" host cpus mem
  host="$(hostname -s)"
  # Leave some memory to the OS; Slurm refuses a node whose RealMemory exceeds what slurmd sees.
  mem="$(free -m | awk -v n="$n" '/^Mem:/ {print int($2 * 0.9 / n)}')"
  if [ "$n" -eq 1 ]; then
    cpus="${HPCML_SLURM_CPUS:-$(nproc)}"
  else
    cpus="${HPCML_SLURM_CPUS:-$(($(nproc) / n))}"
    [ "$cpus" -ge 1 ] || cpus=1
  fi
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  local ctld="$host" pidfile="$DIR/slurmd.pid" logfile="$DIR/log/slurmd.log" what="Single node"
  if [ "$n" -gt 1 ]; then
    ctld="$host($NET.1)"
    pidfile="$DIR/slurmd-%n.pid"
    logfile="$DIR/log/slurmd-%n.log"
    what="$n nodes, one network namespace each"
  fi
  cat >"$CONF" <<EOF
# Written by hpcml scripts/slurm-local.sh. $what, no accounting, no cgroups.
ClusterName=hpcml-local
SlurmctldHost=$ctld
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
SlurmdPidFile=$pidfile
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$logfile
SlurmctldDebug=info
SlurmdDebug=info
EOF
  if [ "$n" -eq 1 ]; then
    cat >>"$CONF" <<EOF
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  else
    local k
    for k in $(seq "$n"); do
      echo "NodeName=n$k NodeAddr=$NET.$((10 + k)) NodeHostname=n$k CPUs=$cpus RealMemory=$mem State=UNKNOWN" >>"$CONF"
    done
    echo "PartitionName=debug Nodes=n[1-$n] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO" >>"$CONF"
  fi
}

# ---- multi-node: namespaces and links ---------------------------------------

ns_of() { echo "$NETNAME-n$1"; }

# Says in one line why namespaces cannot be used here (and records it for the
# multinode tests), then exits 4.
refuse() {
  mkdir -p "$DIR"
  echo "network namespaces refused here: $*" >"$DIR/refused"
  log "cannot start a multi-node cluster: network namespaces refused here: $*"
  teardown_net
  exit 4
}

check_net_name() {
  case "$NETNAME" in
    '' | *[!a-z0-9]*) log "HPCML_SLURM_NETNAME must be lower-case letters and digits, got '$NETNAME'"; exit 2 ;;
  esac
  [ "${#NETNAME}" -le 8 ] || { log "HPCML_SLURM_NETNAME has more than 8 characters: '$NETNAME'"; exit 2; }
  case "$NET" in
    169.254.[0-9] | 169.254.[0-9][0-9] | 169.254.[0-9][0-9][0-9]) ;;
    *) log "HPCML_SLURM_NET must be a link-local 169.254.X prefix, got '$NET'"; exit 2 ;;
  esac
}

setup_net() {
  local n="$1" k ns err
  command -v ip >/dev/null || refuse "no 'ip' command (iproute2)"
  if ! command -v nsenter >/dev/null || ! command -v unshare >/dev/null; then
    refuse "no nsenter/unshare (util-linux)"
  fi
  err="$(unshare --uts true 2>&1)" || refuse "unshare --uts: $err"
  err="$(unshare --mount --propagation slave /bin/sh -c 'mount --bind /etc/hosts /etc/hosts' 2>&1)" ||
    refuse "unshare --mount with a bind mount on /etc/hosts: $err"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    err="$(ip link add "$BRIDGE" type bridge 2>&1)" || refuse "ip link add $BRIDGE type bridge: $err"
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for k in $(seq "$n"); do
    ns="$(ns_of "$k")"
    if [ ! -e "/run/netns/$ns" ]; then
      err="$(ip netns add "$ns" 2>&1)" || refuse "ip netns add $ns: $err"
    fi
    if ! ip link show "${NETNAME}v$k" >/dev/null 2>&1; then
      err="$(ip link add "${NETNAME}v$k" type veth peer name eth0 netns "$ns" 2>&1)" \
        || refuse "ip link add ${NETNAME}v$k type veth: $err"
    fi
    ip link set "${NETNAME}v$k" master "$BRIDGE" up
    nsenter --net="/run/netns/$ns" ip addr replace "$NET.$((10 + k))/24" dev eth0
    nsenter --net="/run/netns/$ns" ip link set eth0 up
    nsenter --net="/run/netns/$ns" ip link set lo up
  done
}

# Removes every namespace, veth and bridge of this prefix (also leftovers of a
# run that died), whatever the state dir says.
teardown_net() {
  local ns k
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NETNAME-n[0-9]+\$" || true); do
    ip netns delete "$ns" 2>/dev/null || true
  done
  for k in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
    grep -E "^${NETNAME}v[0-9]+\$" || true); do
    ip link delete "$k" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE" 2>/dev/null || true; fi
}

# The hosts file every node sees as /etc/hosts: the machine's, less the lines
# that name this host or a node, plus this host at the bridge address and every
# node at its own. Without it nothing resolves n1.. (no DNS here), and this host's
# name resolves to 127.0.0.1, which inside a node's namespace is that node's own
# loopback: MPICH Hydra's proxies, started by srun on the nodes, then cannot
# reach an mpiexec in an allocation ("unable to connect from n2 to <host>").
write_hosts() {
  local n="$1" host full k
  host="$(hostname -s)"
  full="$(hostname)"
  {
    echo "# Written by hpcml scripts/slurm-local.sh: /etc/hosts as the nodes see it."
    awk -v h="$host" -v f="$full" '
      /^[[:space:]]*(#|$)/ { print; next }
      {
        out = $1; keep = 0
        for (i = 2; i <= NF; i++) {
          if ($i ~ /^#/) break
          if ($i == h || $i == f || $i ~ /^n[0-9]+$/) continue
          out = out " " $i; keep = 1
        }
        if (keep) print out
      }' /etc/hosts
    echo "$NET.1 $host"
    for k in $(seq "$n"); do echo "$NET.$((10 + k)) n$k"; done
  } >"$DIR/hosts"
}

# slurmd of node k in its own network namespace, its own UTS namespace
# (hostname nk) and its own mount namespace, where $DIR/hosts is bind-mounted on
# /etc/hosts (propagation slave: every other mount of the machine stays visible).
# nsenter, not `ip netns exec` (which remounts /sys); `ip netns exec` would bind
# /etc/netns/<ns>/hosts, nsenter does not, hence the mount namespace.
start_slurmd_ns() {
  local k="$1" ns
  ns="$(ns_of "$k")"
  # shellcheck disable=SC2016  # $1..$4 are the inner shell's arguments
  unshare --uts --mount --propagation slave /bin/sh -c \
    'hostname "$1" && mount --bind "$4" /etc/hosts &&
     exec nsenter --net="/run/netns/$2" /usr/sbin/slurmd -f "$3" -N "$1"' \
    sh "n$k" "$ns" "$CONF" "$DIR/hosts"
}

# ---- commands ---------------------------------------------------------------

nodes_running() { cat "$DIR/nodes" 2>/dev/null || echo 1; }

daemons_alive() {
  local n="$1" k
  pid_alive "$DIR/slurmctld.pid" || return 1
  if [ "$n" -eq 1 ]; then
    pid_alive "$DIR/slurmd.pid"
    return
  fi
  for k in $(seq "$n"); do pid_alive "$DIR/slurmd-n$k.pid" || return 1; done
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

cmd_start() {
  local n=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes)
        [ $# -ge 2 ] || { log "--nodes needs a number"; exit 2; }
        n="$2"
        shift 2
        ;;
      --nodes=*) n="${1#--nodes=}"; shift ;;
      *) log "start: unknown option '$1' (expected --nodes N)"; exit 2 ;;
    esac
  done
  case "$n" in '' | *[!0-9]* | 0*) log "--nodes: expected a number >= 1, got '$n'"; exit 2 ;; esac
  [ "$n" -le 64 ] || { log "--nodes: at most 64, got $n"; exit 2; }
  if [ -f "$DIR/nodes" ] || pid_alive "$DIR/slurmctld.pid"; then
    local have
    have="$(nodes_running)"
    if [ "$have" != "$n" ]; then
      log "a cluster of $have node(s) is already running in $DIR: stop it first"
      exit 1
    fi
  fi
  if daemons_alive "$n"; then
    log "already running (SLURM_CONF=$CONF, $n node(s))"
    cmd_wait_idle "$n"
    return
  fi
  if [ "$n" -gt 1 ]; then
    check_net_name
    rm -f "$DIR/refused"
    setup_net "$n"
  fi
  start_munge
  write_conf "$n"
  if [ "$n" -gt 1 ]; then
    write_hosts "$n"
    echo "$n" >"$DIR/nodes"
  fi
  pid_alive "$DIR/slurmctld.pid" || /usr/sbin/slurmctld -f "$CONF" -i
  if [ "$n" -eq 1 ]; then
    pid_alive "$DIR/slurmd.pid" || /usr/sbin/slurmd -f "$CONF"
  else
    local k
    for k in $(seq "$n"); do
      pid_alive "$DIR/slurmd-n$k.pid" || start_slurmd_ns "$k"
    done
  fi
  cmd_wait_idle "$n"
  log "running: SLURM_CONF=$CONF, $n node(s), logs in $DIR/log/"
}

cmd_wait_idle() {
  local n="${1:-1}" state="" states
  for _ in $(seq 300); do
    if [ "$n" -eq 1 ]; then
      state="$(node_state || true)"
      case "$state" in
        idle|mixed|allocated) return ;;
        down*|drain*)
          scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
      esac
    else
      states="$(sinfo -h -N -o '%N %T' 2>/dev/null || true)"
      state="$(echo "$states" | tr '\n' ' ')"
      if [ "$(echo "$states" | grep -cE ' (idle|mixed|allocated)$' || true)" -eq "$n" ]; then return; fi
      echo "$states" | awk '$2 ~ /^(down|drain)/ {print $1}' | while read -r node; do
        scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
      done
    fi
    sleep 0.2
  done
  log "node(s) did not become idle (state '${state}'); see $DIR/log/"
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
  local f multi=0
  if [ -f "$CONF" ]; then
    scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
  fi
  if [ -f "$DIR/nodes" ] || [ -f "$DIR/refused" ]; then multi=1; fi
  for f in "$DIR"/slurmd.pid "$DIR"/slurmd-*.pid; do
    if [ -e "$f" ]; then kill_pidfile "$f"; fi
  done
  kill_pidfile "$DIR/slurmctld.pid"
  # munged is shared with anything else on the machine that uses munge: left running.
  # Namespaces and links of this prefix go as well (also those of a start that died).
  if [ "$multi" -eq 1 ] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    check_net_name
    teardown_net
  fi
  rm -rf "$DIR"
  log "stopped"
}

cmd_status() {
  local n
  n="$(nodes_running)"
  if daemons_alive "$n"; then
    if [ "$n" -eq 1 ]; then
      echo "running: SLURM_CONF=$CONF, node $(node_state), logs in $DIR/log/"
    else
      echo "running: SLURM_CONF=$CONF, $n nodes, logs in $DIR/log/"
      sinfo -h -N -o '  %N %T cpus=%c addr=%o' 2>/dev/null || true
    fi
  else
    echo "not running (state dir $DIR)"
    if [ -f "$DIR/refused" ]; then cat "$DIR/refused"; fi
    return 3
  fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF='$CONF'" ;;
  *) echo "usage: $0 start [--nodes N]|stop|status|env" >&2; exit 2 ;;
esac
