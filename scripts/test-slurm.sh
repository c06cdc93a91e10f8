#!/usr/bin/env bash
# A private one-node Slurm cluster on this machine for the test suite (Debian's slurm-wlm
# and munge, installed here if missing). The node declares GPUs as generic resources
# (no devices) and two partitions stand for two Arkwright pools.
#
#   test-slurm.sh            install, configure, start; print `export` lines:
#                            ARKWRIGHT_TEST_SLURM_CONF, or ARKWRIGHT_TEST_SLURM_SKIP with why;
#                            ARKWRIGHT_TEST_SLURM_REST_URL and _TOKEN_FILE for slurmrestd
#                            (JWT auth), or ARKWRIGHT_TEST_SLURM_REST_SKIP;
#                            ARKWRIGHT_TEST_SLURM_SACCT=1 when slurmdbd (on a private
#                            MariaDB) keeps accounting, so sacct answers
#   test-slurm.sh ACTION     start-ctld | stop-ctld | start-slurmd | kill-slurmd | resume |
#                            forget-jobs (restart slurmctld without its job state: a
#                            controller that lost its memory; accounting still remembers)
#                            (the fault tests restart daemons through these)
set -u
dir=${ARKWRIGHT_SLURM_DIR:-/tmp/arkwright-slurm}
conf=$dir/slurm.conf
node=$(hostname -s)
say_skip() { echo "export ARKWRIGHT_TEST_SLURM_SKIP='$1'"; exit 0; }

start_munge() {
  # Ask munged itself: pgrep would also count an unreaped zombie.
  munge -n </dev/null >/dev/null 2>&1 && return 0
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null
  [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || return 1; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged || return 1
  wait_for 10 munge -n </dev/null
}

wait_for() {  # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}

rest_port=16820
rest_up() { curl -sf -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $(cut -d= -f2 "$dir/jwt.token")" \
  "http://127.0.0.1:$rest_port/slurm/v0.0.38/ping" >/dev/null; }
start_rest() {
  # slurmrestd refuses to run as root or SlurmUser; it only relays the caller's JWT.
  SLURM_CONF=$conf scontrol token username=root lifespan=604800 >"$dir/jwt.token.partial" \
    && mv "$dir/jwt.token.partial" "$dir/jwt.token" || return 1
  rest_up && return 0
  pkill -f -- "slurmrestd .*127.0.0.1:$rest_port"
  runuser -u nobody -- env SLURM_CONF="$conf" SLURM_JWT=daemon \
    slurmrestd -a rest_auth/jwt -s openapi/v0.0.38 "127.0.0.1:$rest_port" >"$dir/slurmrestd.log" 2>&1 &
  wait_for 20 rest_up
}

db_up() { mariadb -S "$dir/mysql.sock" -e "select 1"; }
start_accounting() {  # a private MariaDB and slurmdbd; fails quietly where they are missing
  command -v mariadbd >/dev/null && command -v slurmdbd >/dev/null || return 1
  if [ ! -d "$dir/mysql" ]; then
    mariadb-install-db --datadir="$dir/mysql" --user=root \
      --auth-root-authentication-method=socket >/dev/null 2>&1 || return 1
  fi
  if ! db_up >/dev/null 2>&1; then
    mariadbd --datadir="$dir/mysql" --socket="$dir/mysql.sock" --port=33069 \
      --bind-address=127.0.0.1 --user=root --pid-file="$dir/mysql.pid" \
      --log-error="$dir/mysql.err" >/dev/null 2>&1 &
    wait_for 30 db_up || return 1
  fi
  mariadb -S "$dir/mysql.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' \
    IDENTIFIED BY 'arkwright-test'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
    || return 1
  cat >"$dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=16819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=33069
StorageUser=slurm
StoragePass=arkwright-test
StorageLoc=slurm_acct_db
PidFile=$dir/slurmdbd.pid
LogFile=$dir/slurmdbd.log
EOF
  chmod 600 "$dir/slurmdbd.conf"
  pidof_file "$dir/slurmdbd.pid" >/dev/null && return 0
  SLURM_CONF=$conf slurmdbd || return 1
  wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/16819"
}
sacct_works() { SLURM_CONF=$conf sacct -n -X -S now-1hour >/dev/null 2>&1; }

ctld_up() { SLURM_CONF=$conf scontrol ping | grep -q UP; }
node_ready() { SLURM_CONF=$conf sinfo -h -n "$node" -o %t | grep -Eq '^(idle|mix|alloc)$'; }
pidof_file() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"; }

case "${1:-setup}" in
  start-ctld)
    pidof_file "$dir/slurmctld.pid" >/dev/null || slurmctld -f "$conf"
    wait_for 30 ctld_up; exit $? ;;
  stop-ctld)
    pid=$(pidof_file "$dir/slurmctld.pid") && kill "$pid"
    wait_for 30 bash -c "! kill -0 ${pid:-0} 2>/dev/null"; exit 0 ;;
  start-slurmd)
    pidof_file "$dir/slurmd.pid" >/dev/null || slurmd -f "$conf"
    exit 0 ;;
  kill-slurmd)
    pid=$(pidof_file "$dir/slurmd.pid") && kill -9 "$pid"; exit 0 ;;
  forget-jobs)
    pid=$(pidof_file "$dir/slurmctld.pid") && kill "$pid"
    wait_for 30 bash -c "! kill -0 ${pid:-0} 2>/dev/null"
    rm -f "$dir"/state/job_state "$dir"/state/job_state.old
    slurmctld -f "$conf"
    wait_for 30 ctld_up; exit $? ;;
  resume)
    SLURM_CONF=$conf scontrol update nodename="$node" state=resume >/dev/null 2>&1
    wait_for 60 node_ready; exit $? ;;
  setup) ;;
  *) echo "unknown action: $1" >&2; exit 2 ;;
esac

apt_install() {  # quietly, once-updated; fails where apt-get cannot be used
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "installing $* for the tests (apt-get)..." >&2
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq >&2 && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
# The cluster itself first; slurmrestd and accounting are extras whose absence only
# skips their own tests.
{ command -v slurmctld && command -v munged && command -v curl; } >/dev/null \
  || apt_install slurm-wlm munge curl
command -v slurmrestd >/dev/null || apt_install slurmrestd || true
{ command -v slurmdbd && command -v mariadbd; } >/dev/null || apt_install slurmdbd mariadb-server || true
command -v slurmctld >/dev/null || say_skip "Slurm is not installed and apt-get could not install it"
[ "$(id -u)" = 0 ] || say_skip "starting slurmd needs root"
start_munge || say_skip "munged did not start"

# (Without a config file, scontrol waits a minute for a controller it cannot name.)
if [ ! -s "$conf" ] || ! ctld_up 2>/dev/null || ! node_ready 2>/dev/null; then
  mkdir -p "$dir/state" "$dir/spool" "$dir/jobs"
  # Accounting (sacct) where slurmdbd and MariaDB can run here; the rest works without.
  if start_accounting; then
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=16819"
  else
    accounting="AccountingStorageType=accounting_storage/none"
  fi
  [ -s "$dir/jwt.key" ] || { dd if=/dev/urandom of="$dir/jwt.key" bs=32 count=1 2>/dev/null; }
  chmod 600 "$dir/jwt.key"
  # Slurm drops a GPU with no device file, so each stands on an ordinary file here.
  mkdir -p "$dir/dev" && touch "$dir"/dev/gpu{0..7}
  cat >"$dir/gres.conf" <<EOF
AutoDetect=off
NodeName=$node Name=gpu File=$dir/dev/gpu[0-7]
EOF
  # Ports away from a real cluster's; short timeouts so a killed slurmd is noticed in
  # seconds; batch jobs are never requeued by Slurm itself (Arkwright decides where).
  cat >"$conf" <<EOF
ClusterName=arkwright-test
SlurmctldHost=$node
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$accounting
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
SlurmdTimeout=6
SlurmctldTimeout=30
MessageTimeout=5
KillWait=3
MinJobAge=600
JobRequeue=0
InactiveLimit=0
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$dir/jwt.key
NodeName=$node CPUs=16 RealMemory=4000 Gres=gpu:8 State=UNKNOWN
PartitionName=gpu Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
PartitionName=debug Nodes=$node MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  ln -sf "$dir/gres.conf" "$(dirname "$conf")/gres.conf" 2>/dev/null
  # Daemons left from an earlier set-up (their pid files may be gone) hold the ports.
  pkill -f -- "slurmctld -f $conf" && sleep 1
  pkill -f -- "slurmd -f $conf" && sleep 1
  slurmctld -f "$conf" -c >/dev/null 2>&1 || say_skip "slurmctld did not start (see $dir/slurmctld.log)"
  wait_for 30 ctld_up || say_skip "slurmctld did not answer (see $dir/slurmctld.log)"
  slurmd -f "$conf" >/dev/null 2>&1 || say_skip "slurmd did not start (see $dir/slurmd.log)"
  SLURM_CONF=$conf scontrol update nodename="$node" state=resume >/dev/null 2>&1
  wait_for 60 node_ready || say_skip "the Slurm node did not become ready (see $dir/slurmd.log)"
fi
if sacct_works; then  # Slurm accounts for the test programmes, as a site would have them
  SLURM_CONF=$conf sacctmgr -i add account research,nhs >/dev/null 2>&1
  SLURM_CONF=$conf sacctmgr -i add user root account=research,nhs >/dev/null 2>&1
fi
echo "export ARKWRIGHT_TEST_SLURM_CONF=$conf"
echo "export ARKWRIGHT_TEST_SLURM_NODE=$node"
sacct_works && echo "export ARKWRIGHT_TEST_SLURM_SACCT=1"
if ! command -v slurmrestd >/dev/null; then
  echo "export ARKWRIGHT_TEST_SLURM_REST_SKIP='slurmrestd is not installed'"
elif start_rest; then
  echo "export ARKWRIGHT_TEST_SLURM_REST_URL=http://127.0.0.1:$rest_port"
  echo "export ARKWRIGHT_TEST_SLURM_REST_TOKEN_FILE=$dir/jwt.token"
else
  echo "export ARKWRIGHT_TEST_SLURM_REST_SKIP='slurmrestd did not start (see $dir/slurmrestd.log)'"
fi
