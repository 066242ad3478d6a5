#!/usr/bin/env bash
# Checks the published API contract against the running code, on a platform of its own:
#   1. the /openapi.json of every service and the merged one of `crm serve` pass
#      openapi-spec-validator (OpenAPI 3.1);
#   2. a bounded schema-driven fuzz pass (schemathesis, API_CHECK_EXAMPLES cases per operation,
#      positive and negative data) as the demo tenant's admin finds no 5xx, no undocumented
#      status, no response body that violates the document.
#
# Usage: scripts/api-check.sh            (builds the crm binary if needed)
# Environment (defaults in brackets):
#   DATABASE_URL            [postgres://postgres@127.0.0.1:5432/crm_test]; a database
#                           <name>_api is created fresh next to it
#   NATS_URL                [nats://127.0.0.1:4222]
#   API_CHECK_EXAMPLES      [10]  cases per operation and phase
#   API_CHECK_PORT_OFFSET   [500] added to every port (combined port 8000 + offset)
# Tools come from PyPI into .data/venv-api (pinned versions below).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS=schemathesis==4.32.5
VALIDATOR=openapi-spec-validator==0.9.0
examples=${API_CHECK_EXAMPLES:-10}
offset=${API_CHECK_PORT_OFFSET:-500}
base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/crm_test}
base_url=${base_url%%\?*}
db="${base_url##*/}_api"
db_url="${base_url%/*}/$db"
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export JWT_SECRET=${JWT_SECRET:-crm-test-jwt-secret-not-for-production-0123456789}
export PLATFORM_ADMIN_TOKEN=${PLATFORM_ADMIN_TOKEN:-crm-test-platform-admin-token}

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

venv=.data/venv-api
mkdir -p .data/api
if [[ ! -x $venv/bin/schemathesis ]] || ! "$venv/bin/pip" show -q "${SCHEMATHESIS%%=*}" >/dev/null 2>&1; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS" "$VALIDATOR"
fi

cargo build --quiet --bin crm
psql "${base_url%/*}/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
psql "$db_url" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "CREATE EXTENSION IF NOT EXISTS unaccent" >/dev/null

log=.data/api/crm.log
# Services call each other on their shifted ports.
export AUTH_SERVICE_URL=http://127.0.0.1:$((8080 + offset)) TENANT_SERVICE_URL=http://127.0.0.1:$((8081 + offset))
export CONTACT_SERVICE_URL=http://127.0.0.1:$((8082 + offset)) DEAL_SERVICE_URL=http://127.0.0.1:$((8083 + offset))
export COMMUNICATION_SERVICE_URL=http://127.0.0.1:$((8084 + offset))
# One user sends thousands of requests in seconds here: the API rate limit (tested on its
# own, tests/e2e/rate_limits.rs) would answer most of them 429 and hide the operations.
DATABASE_URL=$db_url CRM_PORT_OFFSET=$offset LOG_LEVEL=${LOG_LEVEL:-warn} \
    RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0 \
    target/debug/crm serve --demo >"$log" 2>&1 &
crm_pid=$!
trap 'kill "$crm_pid" 2>/dev/null; wait "$crm_pid" 2>/dev/null || true' EXIT

port=$((8000 + offset))
api="http://127.0.0.1:$port/api/v1"
token=""
# The demo login is printed last, once every demo user exists; log in once, then (a failed
# attempt would count towards the login throttle).
for _ in $(seq 1 600); do
    if ! kill -0 "$crm_pid" 2>/dev/null; then
        echo "crm serve exited; its log:" >&2; tail -n 40 "$log" >&2; exit 1
    fi
    grep -q 'password:' "$log" && break
    grep -q 'demo seeding failed' "$log" && break
    sleep 0.2
done
reply=$(curl -s "$api/auth/login" -H 'content-type: application/json' \
    -d '{"tenant": "demo", "email": "admin@demo.example", "password": "demo-password-2026"}' || true)
token=$(sed -nE 's/.*"access_token":"([^"]+)".*/\1/p' <<<"$reply")
[[ -n $token ]] || { echo "the demo tenant never became available; log:" >&2; tail -n 40 "$log" >&2; exit 1; }

failed=0
printf '==> OpenAPI documents (openapi-spec-validator)\n'
for p in "$port" $((8080 + offset)) $((8081 + offset)) $((8082 + offset)) $((8083 + offset)) $((8084 + offset)); do
    doc=.data/api/openapi-$p.json
    curl -sf "http://127.0.0.1:$p/openapi.json" -o "$doc"
    if "$venv/bin/openapi-spec-validator" "$doc" >/dev/null; then
        echo "  valid: :$p/openapi.json"
    else
        "$venv/bin/openapi-spec-validator" "$doc" | tail -n 20 || true
        echo "  INVALID: :$p/openapi.json"; failed=1
    fi
done

printf '==> schema-driven fuzz pass (schemathesis, %s cases per operation)\n' "$examples"
# The admin's own session stays usable: logging out and the operator-only tenant deletion are
# exercised by the Rust tests instead.
if ! "$venv/bin/schemathesis" run ".data/api/openapi-$port.json" --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing --max-examples "$examples" --seed 20261130 --workers 2 --no-shrink \
    --exclude-operation-id auth_logout --generation-database none --request-timeout 10 \
    --no-color; then
    failed=1
fi
if grep -q '"level":"ERROR"' "$log"; then
    echo "errors logged by the platform during the pass:"; grep '"level":"ERROR"' "$log" | tail -n 10
fi
exit "$failed"
