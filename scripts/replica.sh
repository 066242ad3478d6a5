#!/usr/bin/env bash
# Start a real streaming replica (hot standby) of the local PostgreSQL cluster, for
# DATABASE_READ_URL (issue 14 item 4) and its tests.
#
#   - the primary is the local cluster serving PRIMARY_PORT (default 5432; PGPORT applies);
#   - the replica is a plain data directory (REPLICA_DIR, default
#     /var/lib/postgresql/crm-replica-<port>) made by `pg_basebackup -R` (standby.signal and
#     primary_conninfo), with a small postgresql.conf of its own (Debian keeps the primary's
#     configuration in /etc, so the base backup has none), started with `pg_ctl` on
#     REPLICA_PORT (default 5433), 127.0.0.1 only, as the postgres OS user;
#   - the primary must accept replication connections from 127.0.0.1: when its pg_hba.conf has
#     no such line, one `host replication postgres 127.0.0.1/32 trust` line is added (marked)
#     and the configuration reloaded.
#
# Idempotent: a running replica that streams is left alone; a stopped one is started; one that
# cannot catch up (the WAL it needs was recycled: no replication slot is used, so that a
# forgotten, stopped replica never makes the primary keep WAL without bound) is rebuilt.
# Every database of the cluster is replicated, read only.
#
# Usage: scripts/replica.sh [start|stop|status|url]   (default: start)
#   start   make it run and stream; prints  replica ok  postgres://postgres@127.0.0.1:5433
#   stop    pg_ctl stop -m fast (the data directory is kept)
#   status  exit 0 when it runs in recovery and streams from the primary
#   url     print the base URL (append /<database>)
# Must run as root (or as postgres) on the machine of the primary.
#
# Environment: PRIMARY_PORT, REPLICA_PORT, REPLICA_DIR, REPLICA_TIMEOUT (seconds, default 180:
# a standby started again replays the WAL since its last restart point before it accepts
# connections: everything the primary wrote since its last checkpoint, and while it was down).
set -euo pipefail

PRIMARY_PORT="${PRIMARY_PORT:-${PGPORT:-5432}}"
REPLICA_PORT="${REPLICA_PORT:-5433}"
REPLICA_DIR="${REPLICA_DIR:-/var/lib/postgresql/crm-replica-$REPLICA_PORT}"
REPLICA_TIMEOUT="${REPLICA_TIMEOUT:-180}"
APP_NAME="crm_replica_$REPLICA_PORT"
HBA_MARKER="# added by crm scripts/replica.sh: streaming replication from the local replica"
LOG="$REPLICA_DIR.log"

die() {
    printf 'replica.sh: error: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

as_postgres() {
    if [[ $(id -un) == postgres ]]; then
        "$@"
    elif [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        die "must run as root or as the postgres user" "(it runs pg_basebackup and pg_ctl as postgres)"
    fi
}

pg_bin() {
    local v
    v="$(psql_primary -Atc 'show server_version_num' 2>/dev/null)" || die "no PostgreSQL serves 127.0.0.1:$PRIMARY_PORT"
    v=$((v / 10000))
    [[ -x /usr/lib/postgresql/$v/bin/pg_ctl ]] || die "pg_ctl of PostgreSQL $v not found in /usr/lib/postgresql/$v/bin"
    printf '/usr/lib/postgresql/%s/bin' "$v"
}

psql_primary() { psql -X -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres "$@"; }
psql_replica() { psql -X -q -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres "$@"; }

url() { printf 'postgres://postgres@127.0.0.1:%s\n' "$REPLICA_PORT"; }

# Runs in recovery, and the primary lists it as streaming.
streaming() {
    [[ "$(psql_replica -Atc 'select pg_is_in_recovery()' 2>/dev/null)" == t ]] || return 1
    [[ "$(psql_primary -Atc "select count(*) from pg_stat_replication where application_name = '$APP_NAME' and state = 'streaming'" 2>/dev/null)" -ge 1 ]]
}

running() { [[ -f $REPLICA_DIR/postmaster.pid ]] && as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" status >/dev/null 2>&1; }

wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}

ensure_hba() {
    local hba
    hba="$(psql_primary -Atc 'show hba_file')"
    if [[ "$(psql_primary -Atc "select count(*) from pg_hba_file_rules where 'replication' = any(database) and type = 'host' and (address is null or address = '127.0.0.1' or address = 'all')")" -ge 1 ]]; then
        return 0
    fi
    printf 'replica.sh: allowing replication connections from 127.0.0.1 in %s\n' "$hba"
    printf '%s\nhost replication postgres 127.0.0.1/32 trust\n' "$HBA_MARKER" >>"$hba"
    psql_primary -Atc 'select pg_reload_conf()' >/dev/null
}

# A setting of the primary that a hot standby must have at least as high.
primary_setting() { psql_primary -Atc "show $1"; }

build() {
    printf 'replica.sh: pg_basebackup of 127.0.0.1:%s into %s ...\n' "$PRIMARY_PORT" "$REPLICA_DIR"
    if [[ -d $REPLICA_DIR ]]; then
        as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$REPLICA_DIR"
    fi
    mkdir -p "$(dirname "$REPLICA_DIR")"
    install -d -o postgres -g postgres -m 0700 "$REPLICA_DIR"
    as_postgres "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$REPLICA_DIR" \
        -R -X stream -c fast --no-sync -d "application_name=$APP_NAME" ||
        die "pg_basebackup failed"
    # -R wrote standby.signal and primary_conninfo (postgresql.auto.conf); the rest is ours.
    as_postgres tee "$REPLICA_DIR/postgresql.conf" >/dev/null <<EOF
# crm scripts/replica.sh: hot standby of 127.0.0.1:$PRIMARY_PORT
port = $REPLICA_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '/var/run/postgresql'
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = 30s
# At least the primary's (a hot standby refuses to start below them).
max_connections = $(primary_setting max_connections)
max_worker_processes = $(primary_setting max_worker_processes)
max_wal_senders = $(primary_setting max_wal_senders)
max_prepared_transactions = $(primary_setting max_prepared_transactions)
max_locks_per_transaction = $(primary_setting max_locks_per_transaction)
shared_buffers = 32MB
fsync = off
logging_collector = off
EOF
    as_postgres tee "$REPLICA_DIR/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
    as_postgres touch "$REPLICA_DIR/pg_ident.conf"
    rm -f "$REPLICA_DIR/postmaster.pid" "$REPLICA_DIR/postmaster.opts"
}

# Started without waiting (`-W`): a standby accepts connections only once it has replayed up to
# a consistent point, which can take long; the callers wait for it to stream instead.
start_server() {
    touch "$LOG" && chown postgres: "$LOG" 2>/dev/null || true
    as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -l "$LOG" -W start >/dev/null
}

cmd_start() {
    ensure_hba
    if [[ ! -f $REPLICA_DIR/standby.signal ]]; then
        build
    fi
    running || start_server || {
        tail -n 20 "$LOG" >&2
        die "the replica did not start (log: $LOG)"
    }
    if ! wait_for "$REPLICA_TIMEOUT" streaming; then
        if grep -q 'has already been removed' "$LOG" 2>/dev/null || ! running; then
            printf 'replica.sh: the replica cannot catch up (WAL recycled): rebuilding\n'
            build
            start_server || die "the rebuilt replica did not start (log: $LOG)"
            wait_for "$REPLICA_TIMEOUT" streaming || die "the rebuilt replica does not stream (log: $LOG)"
        else
            tail -n 20 "$LOG" >&2
            die "the replica runs but does not stream from 127.0.0.1:$PRIMARY_PORT within ${REPLICA_TIMEOUT}s (log: $LOG)"
        fi
    fi
    printf 'replica   ok    %s (streaming from 127.0.0.1:%s, data %s)\n' "$(url)" "$PRIMARY_PORT" "$REPLICA_DIR"
}

# Before stopping: a restart point on the standby (at the newest checkpoint it has replayed), so
# that starting it again replays less. Not a CHECKPOINT on the primary: on a cluster with many
# thousands of relation files that takes minutes and slows everyone.
cmd_stop() {
    if running; then
        psql_replica -c 'CHECKPOINT' >/dev/null 2>&1 || true
        as_postgres "$BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w stop >/dev/null
    fi
    printf 'replica   stopped\n'
}

command -v psql >/dev/null 2>&1 || die "psql not found (scripts/deps.sh installs PostgreSQL)"
case "${1:-start}" in
    url) url ;;
    start) BIN="$(pg_bin)"; cmd_start ;;
    stop) BIN="$(pg_bin)"; cmd_stop ;;
    status) streaming ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command: $1" "usage: scripts/replica.sh [start|stop|status|url]" ;;
esac
