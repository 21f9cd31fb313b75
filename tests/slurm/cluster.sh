#!/usr/bin/env bash
# Brings up a one-node SLURM cluster on this machine, for the SLURM executor's tests: installs
# Debian's `slurm-wlm` and `munge` if missing, writes one `slurm.conf` naming this host as the
# controller and the only compute node (with its real CPU count and memory, from `slurmd -C`),
# starts `munged`, `slurmctld` and `slurmd` directly (no systemd), and waits until `sinfo` shows
# the node ready for jobs.
#
# Idempotent and fast: when the daemons already run with this configuration and the node is up,
# it only checks and returns. It must run as root. It exits non-zero, with the daemons' logs,
# when the cluster cannot come up: the tests that need it then fail instead of skipping.
#
# There is no accounting database (`AccountingStorageType=accounting_storage/none`), as on many
# small clusters: `sacct` answers with an error, and the executor falls back to `scontrol`.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
STATE_DIR=/var/lib/slurm
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
# How long the node gets to become ready, in seconds.
READY_WITHIN=${SLURM_READY_WITHIN:-60}

say() { printf 'slurm cluster: %s\n' "$*" >&2; }

fail() {
  say "FAILED: $*"
  for log in /var/log/munge/munged.log "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log"; do
    if [ -f "$log" ]; then
      printf -- '--- last lines of %s\n' "$log" >&2
      tail -n 30 "$log" >&2 || true
    fi
  done
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  fail "must run as root (it installs packages and starts the SLURM daemons)"
fi

# Tests call this concurrently: one at a time. The daemons are started without the lock's file
# descriptor (`9>&-`), or they would hold the lock for as long as they run.
mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/cluster.lock"
flock -w 120 9 || fail "another tests/slurm/cluster.sh has held $RUN_DIR/cluster.lock for 2 minutes"

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || fail "apt-get update failed"
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
    || fail "apt-get install slurm-wlm munge failed"
fi

# 2. munge: a key, and the daemon.
if [ ! -s /etc/munge/munge.key ]; then
  say "creating a munge key"
  mungekey --create --keyfile=/etc/munge/munge.key || fail "cannot create a munge key"
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged 9>&- || fail "munged did not start"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n | unmunge >/dev/null || fail "munge does not work"
fi

# 3. slurm.conf: this host as controller and single node, with what `slurmd -C` measures.
host=$(hostname -s)
node_line=$(slurmd -C | head -n 1)
case "$node_line" in
  NodeName=*) ;;
  *) fail "slurmd -C did not describe this node: $node_line" ;;
esac
mkdir -p "$CONF_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" "$LOG_DIR" "$RUN_DIR"
wanted=$(mktemp)
trap 'rm -f "$wanted"' EXIT
cat >"$wanted" <<EOF
# Written by tests/slurm/cluster.sh: a one-node test cluster. Rewritten when it differs.
ClusterName=engine-test
# Addresses given, so the cluster works even where the host name does not resolve.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that asks for no memory gets this much per CPU, not the whole node.
DefMemPerCPU=1024
# Peak memory and CPU time of every job, reported by scontrol and sstat.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Finished jobs stay visible to scontrol for ten minutes.
MinJobAge=600
# Seconds between SIGTERM and SIGKILL on scancel and on a time limit.
KillWait=2
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
changed=no
if ! cmp -s "$wanted" "$CONF"; then
  say "writing $CONF"
  cp "$wanted" "$CONF"
  changed=yes
fi
# slurmd loads a cgroup plugin even though jobs are tracked by process (proctrack/linuxproc):
# let it pick the hierarchy mounted here, and not ask systemd, which does not run here.
cgroup_conf=$'CgroupPlugin=autodetect\nIgnoreSystemd=yes'
if [ "$(cat "$CONF_DIR/cgroup.conf" 2>/dev/null)" != "$cgroup_conf" ]; then
  printf '%s\n' "$cgroup_conf" >"$CONF_DIR/cgroup.conf"
  changed=yes
fi

# 4. The daemons, started directly. A changed configuration restarts them.
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {
  if running "$1"; then
    kill "$(cat "$1")" 2>/dev/null || true
    for _ in $(seq 50); do running "$1" || break; sleep 0.1; done
  fi
}
if [ "$changed" = yes ]; then
  stop "$RUN_DIR/slurmd.pid"
  stop "$RUN_DIR/slurmctld.pid"
fi
if ! running "$RUN_DIR/slurmctld.pid"; then
  say "starting slurmctld"
  /usr/sbin/slurmctld 9>&- || fail "slurmctld did not start"
fi
if ! running "$RUN_DIR/slurmd.pid"; then
  say "starting slurmd"
  /usr/sbin/slurmd 9>&- || fail "slurmd did not start"
fi

# 5. Wait until the node takes jobs.
state=""
for _ in $(seq $((READY_WITHIN * 5))); do
  state=$(sinfo --noheader --nodes="$host" --format=%T 2>/dev/null | head -n 1 || true)
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    drain* | down*)
      # Left down by an earlier configuration or an unclean stop: bring it back.
      scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
      ;;
  esac
  sleep 0.2
done
case "$state" in
  idle | mixed | allocated | completing) ;;
  *)
    sinfo -R >&2 || true
    fail "node $host is not ready after ${READY_WITHIN}s (state: ${state:-unknown})"
    ;;
esac
say "node $host is $state"
