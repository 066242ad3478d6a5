#!/usr/bin/env bash
# A noisy tenant must not starve the others (issue 14, item 4): tenant "quiet" reads
# GET /api/v1/contacts/{id} at a few connections, alone, then while tenant "demo" hammers the
# same endpoint at 256 connections (a closed loop: each connection sends its next request as
# soon as the previous one is answered). "quiet" has a tenant quota override of 0 (none), so
# only the noisy tenant is limited and the quiet one's latency is what is measured. Phases
# (PHASES, default all, in this order):
#   fair       the defaults: tenant quota (6,000/min) with shaping (a request over the quota
#              waits up to RATE_LIMIT_MAX_DELAY_MS = 1 s for its turn before 429) and per-tenant
#              admission (TENANT_MAX_IN_FLIGHT = half the pool, FIFO wait)
#   refuse     the quota answering 429 at once, no admission (the behaviour before shaping)
#   admission  no quota, admission only
#   none       no quota, no admission
# Prints, per phase, the quiet tenant alone and next to the noise, the noisy tenant's answers
# (200 / 429 / 503 per second), and the quiet p99 ratio (goal: < 2 with the defaults).
#
# Usage: scripts/bench-noisy-neighbour.sh
# Environment: DATABASE_URL (a database <name>_noisy is created fresh next to it), NATS_URL,
#   SECS (seconds per measurement, default 10), QUIET_CONNECTIONS (default 4), NOISY_CONNECTIONS
#   (default 256), PHASES (default "fair refuse admission none"), NOISY_WARMUP (seconds of noisy
#   load before the quiet tenant is measured next to it, default 4), BENCH_PORT_OFFSET (default
#   720), SKIP_BUILD=1 to reuse target/release/crm. Needs wrk (Debian package wrk). wrk runs on
#   the same machine as the service: the load generator takes cores from it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${SECS:-10}
quiet_c=${QUIET_CONNECTIONS:-4}
noisy_c=${NOISY_CONNECTIONS:-256}
phases=${PHASES:-fair refuse admission none}
warmup=${NOISY_WARMUP:-4}
offset=${BENCH_PORT_OFFSET:-720}
base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/crm_test}
base_url=${base_url%%\?*}
db="${base_url##*/}_noisy"
db_url="${base_url%/*}/$db"
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export JWT_SECRET=${JWT_SECRET:-crm-bench-jwt-secret-not-for-production-0123456789}
export PLATFORM_ADMIN_TOKEN=${PLATFORM_ADMIN_TOKEN:-crm-bench-platform-admin-token}
export AUTH_SERVICE_URL=http://127.0.0.1:$((8080 + offset)) TENANT_SERVICE_URL=http://127.0.0.1:$((8081 + offset))
export CONTACT_SERVICE_URL=http://127.0.0.1:$((8082 + offset)) DEAL_SERVICE_URL=http://127.0.0.1:$((8083 + offset))
export COMMUNICATION_SERVICE_URL=http://127.0.0.1:$((8084 + offset))
port=$((8000 + offset))
api="http://127.0.0.1:$port/api/v1"

[[ ${SKIP_BUILD:-0} == 1 ]] || cargo build --quiet --release --bin crm
psql "${base_url%/*}/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
psql "$db_url" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "CREATE EXTENSION IF NOT EXISTS unaccent" >/dev/null
mkdir -p .data/bench
log=.data/bench/noisy-crm.log
crm_pid=""
stop() { [[ -z $crm_pid ]] || { kill "$crm_pid" 2>/dev/null; wait "$crm_pid" 2>/dev/null || true; }; crm_pid=""; }
trap stop EXIT

# start [ENV=VALUE...]: crm serve (release) with the demo tenant, until it prints its login.
start() {
    stop
    : >"$log"
    env DATABASE_URL="$db_url" CRM_PORT_OFFSET="$offset" LOG_LEVEL=warn "$@" target/release/crm serve --demo >"$log" 2>&1 &
    crm_pid=$!
    until grep -q 'password:' "$log"; do
        kill -0 "$crm_pid" 2>/dev/null || { tail -n 30 "$log"; exit 1; }
        sleep 0.2
    done
}
json() { sed -nE "s/.*\"$1\":\"?([^\",}]+)\"?.*/\1/p"; }
login() {
    curl -s "$api/auth/login" -H 'content-type: application/json' \
        -d "{\"tenant\": \"$1\", \"email\": \"$2\", \"password\": \"$3\"}" | json access_token
}
# contacts TOKEN N: creates N contacts, prints their ids comma-separated.
contacts() {
    local ids=() i
    for i in $(seq 1 "$2"); do
        ids+=("$(curl -s "$api/contacts" -H "Authorization: Bearer $1" -H 'content-type: application/json' \
            -d "{\"first_name\": \"Load\", \"last_name\": \"Test $i\"}" | sed -nE 's/^\{"id":([0-9]+).*/\1/p')")
    done
    (IFS=,; echo "${ids[*]}")
}
# load TOKEN IDS CONNECTIONS SECONDS: wrk's RESULT line (scripts/bench/noisy.lua).
load() {
    IDS=$2 TOKEN=$1 wrk -t2 -c"$3" -d"${4}s" --timeout 10s -s scripts/bench/noisy.lua "http://127.0.0.1:$port" | grep RESULT
}
p99() { sed -nE 's/.*p99 ([0-9.]+) ms,.*/\1/p'; }

# Set-up (limits off): the second tenant, its admin, contacts in both.
start RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0
signup=$(curl -s "$api/tenants" -H "Authorization: Bearer $PLATFORM_ADMIN_TOKEN" -H 'content-type: application/json' \
    -d '{"name": "Quiet Ltd", "subdomain": "quiet", "admin_email": "admin@quiet.example"}')
quiet_id=$(sed -nE 's/.*"tenant":\{"id":"([^"]+)".*/\1/p' <<<"$signup")
invite=$(sed -nE 's/.*"token":"([^"]+)".*/\1/p' <<<"$signup")
curl -s "$api/auth/register" -H 'content-type: application/json' \
    -d "{\"invitation_token\": \"$invite\", \"password\": \"quiet-password-2026\", \"first_name\": \"Q\", \"last_name\": \"Admin\"}" >/dev/null
quiet_ids=$(contacts "$(login quiet admin@quiet.example quiet-password-2026)" 100)
demo_ids=$(contacts "$(login demo admin@demo.example demo-password-2026)" 100)

printf 'crm serve (release), %s s per phase, quiet tenant %s connections, noisy tenant %s connections, %s cores\n' \
    "$secs" "$quiet_c" "$noisy_c" "$(nproc)"
summary=()
for mode in $phases; do
    case $mode in
        fair) start RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=6000 "RATE_LIMIT_TENANT_OVERRIDES=$quiet_id=0" ;;
        refuse) start RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=6000 "RATE_LIMIT_TENANT_OVERRIDES=$quiet_id=0" \
            RATE_LIMIT_MAX_DELAY_MS=0 TENANT_MAX_IN_FLIGHT=0 ;;
        admission) start RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0 ;;
        none) start RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0 TENANT_MAX_IN_FLIGHT=0 ;;
        *) echo "unknown phase $mode (fair, refuse, admission, none)" >&2; exit 2 ;;
    esac
    quiet_token=$(login quiet admin@quiet.example quiet-password-2026)
    demo_token=$(login demo admin@demo.example demo-password-2026)
    load "$quiet_token" "$quiet_ids" "$quiet_c" 3 >/dev/null  # warm-up
    alone=$(load "$quiet_token" "$quiet_ids" "$quiet_c" "$secs")
    load "$demo_token" "$demo_ids" "$noisy_c" $((secs + warmup + 2)) >.data/bench/noisy-wrk.txt &
    noisy_pid=$!
    # The noisy load at full speed, and past its quota's burst (one minute's worth: 6,000
    # requests, ~2 s at full speed), before the quiet tenant is measured again.
    sleep "$warmup"
    crowded=$(load "$quiet_token" "$quiet_ids" "$quiet_c" "$secs")
    wait "$noisy_pid"
    printf '%-9s quiet alone:      %s\n' "$mode" "${alone#RESULT }"
    printf '%-9s quiet with noise: %s\n' "$mode" "${crowded#RESULT }"
    printf '%-9s noisy tenant:     %s\n' "$mode" "$(sed 's/^RESULT //' .data/bench/noisy-wrk.txt)"
    summary+=("$(awk -v a="$(p99 <<<"$alone")" -v b="$(p99 <<<"$crowded")" -v m="$mode" \
        'BEGIN { printf "%-9s quiet p99 alone %s ms, with noise %s ms, ratio %.2f", m, a, b, b / a }')")
done
printf '%s\n' "${summary[@]}"
