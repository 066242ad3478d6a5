#!/usr/bin/env bash
# Enrichment under load (issue 14, item 1): GET /api/v1/contacts/{id} on `crm serve`'s combined
# port, whose answer carries `owner_name` looked up in auth-service over HTTP, at each
# connection count; counts non-200 answers and null owner names, and reports latency. The
# baseline is pgbench running the same SELECT (through a scoped transaction) in the same run.
#
# Usage: scripts/bench-enrichment.sh [CONNECTIONS...]      (default: 1 32 256)
# Environment: DATABASE_URL (a database <name>_enrich is created fresh next to it), NATS_URL,
#   SECS (seconds per run, default 10), CONTACTS (default 300), BENCH_PORT_OFFSET (default 700).
# Needs wrk and pgbench (Debian packages wrk, postgresql-contrib).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

conns=("$@"); ((${#conns[@]})) || conns=(1 32 256)
secs=${SECS:-10}
contacts=${CONTACTS:-300}
offset=${BENCH_PORT_OFFSET:-700}
base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/crm_test}
base_url=${base_url%%\?*}
db="${base_url##*/}_enrich"
db_url="${base_url%/*}/$db"
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export JWT_SECRET=${JWT_SECRET:-crm-bench-jwt-secret-not-for-production-0123456789}
export PLATFORM_ADMIN_TOKEN=${PLATFORM_ADMIN_TOKEN:-crm-bench-platform-admin-token}
export AUTH_SERVICE_URL=http://127.0.0.1:$((8080 + offset)) TENANT_SERVICE_URL=http://127.0.0.1:$((8081 + offset))
export CONTACT_SERVICE_URL=http://127.0.0.1:$((8082 + offset)) DEAL_SERVICE_URL=http://127.0.0.1:$((8083 + offset))
export COMMUNICATION_SERVICE_URL=http://127.0.0.1:$((8084 + offset))

[[ ${SKIP_BUILD:-0} == 1 ]] || cargo build --quiet --release --bin crm
psql "${base_url%/*}/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
psql "$db_url" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "CREATE EXTENSION IF NOT EXISTS unaccent" >/dev/null

mkdir -p .data/bench
log=.data/bench/enrichment-crm.log
# The load is one user: measured without the API rate limit (which would answer it 429).
DATABASE_URL=$db_url CRM_PORT_OFFSET=$offset LOG_LEVEL=warn RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0 target/release/crm serve --demo >"$log" 2>&1 &
crm_pid=$!
trap 'kill "$crm_pid" 2>/dev/null; wait "$crm_pid" 2>/dev/null || true' EXIT
until grep -q 'password:' "$log"; do
    kill -0 "$crm_pid" 2>/dev/null || { tail -n 30 "$log"; exit 1; }
    sleep 0.2
done
api="http://127.0.0.1:$((8000 + offset))/api/v1"
token=$(curl -s "$api/auth/login" -H 'content-type: application/json' \
    -d '{"tenant": "demo", "email": "admin@demo.example", "password": "demo-password-2026"}' | sed -nE 's/.*"access_token":"([^"]+)".*/\1/p')
ids=()
for i in $(seq 1 "$contacts"); do
    ids+=("$(curl -s "$api/contacts" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"first_name\": \"Load\", \"last_name\": \"Test $i\"}" | sed -nE 's/^\{"id":([0-9]+).*/\1/p')")
done
IDS=$(IFS=,; echo "${ids[*]}")
export IDS TOKEN=$token
schema=$(psql "$db_url" -qAt -c "SELECT schema_name FROM platform.tenants WHERE subdomain = 'demo'")

# The baseline: the same SELECT as GET /contacts/{id}, in a transaction with the local search path.
cat >.data/bench/enrichment.sql <<SQL
\set id random(${ids[0]}, ${ids[-1]})
BEGIN;
SELECT set_config('search_path', '$schema, public', true);
SELECT c.*, co.name FROM contacts c LEFT JOIN companies co ON co.id = c.company_id WHERE c.id = :id;
COMMIT;
SQL

printf 'crm serve (release), %s contacts, %s s per run, machine: %s cores\n' "$contacts" "$secs" "$(nproc)"
for c in "${conns[@]}"; do
    threads=$((c < 2 ? 1 : 2))
    result=$(wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 10s -s scripts/bench/enrichment.lua "http://127.0.0.1:$((8000 + offset))" | grep RESULT)
    pg_c=$((c > 64 ? 64 : c))  # within max_connections
    tps=$(pgbench -n -c "$pg_c" -j "$threads" -T "$secs" -f .data/bench/enrichment.sql "$db_url" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p' || true)
    if [[ -z $tps && $pg_c -gt 16 ]]; then
        # A shared server may not have 64 free connections (crm serve holds its pool): fewer.
        pg_c=16
        tps=$(pgbench -n -c "$pg_c" -j "$threads" -T "$secs" -f .data/bench/enrichment.sql "$db_url" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p' || true)
    fi
    tps=${tps:-0}
    printf '%4s connections: %s | pgbench same SELECT (%s connections): %.0f tps\n' "$c" "${result#RESULT }" "$pg_c" "$tps"
done
printf 'circuit opened: %s times; enrichment failures logged: %s\n' \
    "$(grep -c 'circuit opened' "$log" || true)" "$(grep -c 'owner names unavailable' "$log" || true)"
