#!/usr/bin/env bash
# The web console's checks (web/), against a real `crm serve` this script starts:
#   1. build: `npm ci` (the committed lockfile) and `npm run build` (type check + Vite);
#   2. the committed API client (web/src/api/schema.d.ts) is what the served OpenAPI document
#      generates (`npm run api:check`): fails when the API changed without regenerating it;
#   3. the component tests (vitest);
#   4. the end-to-end tests in headless Chromium (Debian's `chromium`, driven by
#      playwright-core; no browser download) on a tenant subdomain of the served console.
# The server gets its own database (crm_web_e2e_<pid>, dropped at the end), a nats-server of
# its own and free ports (CRM_PORT_OFFSET). The last line is `web: N passed, M failed`
# (scripts/test.sh counts it).
#
# Usage: scripts/web-check.sh
# Environment (defaults in brackets):
#   DATABASE_URL          [postgres://postgres@127.0.0.1:5432/crm_test]: its server is used
#   JWT_SECRET, PLATFORM_ADMIN_TOKEN   [the test values of scripts/test.sh]
#   CRM_BIN               [target/debug/crm, built (cargo build --bin crm) unless CRM_BIN is given]
#   CHROMIUM              [/usr/bin/chromium]
#   E2E_REPORT            [web/.e2e/report.json: the measured budgets]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT="$PWD"

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + $1)); }
fail() { FAILED=$((FAILED + $1)); printf '==> web: FAILED: %s\n' "$2"; }
finish() {
    [[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [[ -n ${NATS_PID:-} ]] && kill "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null
    [[ -n ${MAIL_DIR:-} ]] && rm -rf "$MAIL_DIR" "$MAIL_DIR.jetstream"
    [[ -n ${E2E_DB:-} ]] && psql "$ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS \"$E2E_DB\" WITH (FORCE)" >/dev/null 2>&1
    printf '\nweb: %d passed, %d failed\n' "$PASSED" "$FAILED"
    ((FAILED == 0))
}
trap 'finish; exit $?' EXIT

export DATABASE_URL="${DATABASE_URL:-postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/crm_test}"
export JWT_SECRET="${JWT_SECRET:-crm-test-jwt-secret-not-for-production-0123456789}"
export PLATFORM_ADMIN_TOKEN="${PLATFORM_ADMIN_TOKEN:-crm-test-platform-admin-token}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -n ${CRM_BIN:-} ]] && CRM_BIN_GIVEN=1
CRM_BIN="${CRM_BIN:-${CARGO_TARGET_DIR:-target}/debug/crm}"
mkdir -p web/.e2e
export E2E_REPORT="${E2E_REPORT:-$ROOT/web/.e2e/report.json}"

for tool in node npm psql; do
    command -v "$tool" >/dev/null || { fail 1 "$tool is missing (scripts/deps.sh installs it)"; exit 1; }
done
[[ -x $CHROMIUM ]] || { fail 1 "no Chromium at $CHROMIUM (scripts/deps.sh installs Debian's chromium)"; exit 1; }

printf '==> web: npm ci && npm run build\n'
if ! (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build); then
    fail 1 "building the console"
    exit 1
fi
pass 1

if [[ -z ${CRM_BIN_GIVEN:-} ]]; then
    # A no-op when the test build already made it.
    printf '==> web: cargo build --bin crm\n'
    cargo build --bin crm || { fail 1 "building crm"; exit 1; }
fi

# Own database on the caller's server; free ports for every listener of `crm serve`.
ADMIN_URL="${DATABASE_URL%/*}/postgres"
E2E_DB="crm_web_e2e_$$"
PGOPTIONS=--client-min-messages=warning psql "$ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS \"$E2E_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$E2E_DB\"" >/dev/null &&
    psql "${DATABASE_URL%/*}/$E2E_DB" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "CREATE EXTENSION IF NOT EXISTS unaccent" >/dev/null ||
    { fail 1 "creating the database $E2E_DB"; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
OFFSET=""
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 30000))
    ok=1
    for p in 8000 8080 8081 8082 8083 8084; do port_free $((p + candidate)) || { ok=0; break; }; done
    ((ok)) && { OFFSET=$candidate; break; }
done
[[ -n $OFFSET ]] || { fail 1 "no free ports for crm serve"; exit 1; }
PORT=$((8000 + OFFSET))
CRM_URL="http://127.0.0.1:$PORT"
LOG="$ROOT/web/.e2e/crm-serve.log"
MAIL_DIR="$(mktemp -d /tmp/crm-web-mail.XXXXXX)"

# A nats-server of its own: the durable consumers are named per service, so a second platform
# on a shared server would take this one's events (and the other way round).
NATS_BIN="$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)"
[[ -x $NATS_BIN ]] || { fail 1 "nats-server is not installed (scripts/deps.sh installs it)"; exit 1; }
NATS_PORT=""
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 30000))
    port_free "$candidate" && { NATS_PORT=$candidate; break; }
done
[[ -n $NATS_PORT ]] || { fail 1 "no free port for nats-server"; exit 1; }
"$NATS_BIN" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$MAIL_DIR.jetstream" >"$ROOT/web/.e2e/nats.log" 2>&1 &
NATS_PID=$!
for _ in $(seq 40); do port_free "$NATS_PORT" || break; sleep 0.25; done
export NATS_URL="nats://127.0.0.1:$NATS_PORT"

printf '==> web: crm serve on %s (CRM_PORT_OFFSET=%d, database %s, nats-server on %d)\n' "$CRM_URL" "$OFFSET" "$E2E_DB" "$NATS_PORT"
env DATABASE_URL="${DATABASE_URL%/*}/$E2E_DB" CRM_PORT_OFFSET="$OFFSET" CONSOLE_DIR="$ROOT/web/dist" \
    BCRYPT_COST=4 LOG_LEVEL=warn LOG_FORMAT=json TENANT_SIGNUP=closed EMAIL_SINK_DIR="$MAIL_DIR" \
    RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0 \
    AUTH_SERVICE_URL="http://127.0.0.1:$((8080 + OFFSET))" TENANT_SERVICE_URL="http://127.0.0.1:$((8081 + OFFSET))" \
    CONTACT_SERVICE_URL="http://127.0.0.1:$((8082 + OFFSET))" DEAL_SERVICE_URL="http://127.0.0.1:$((8083 + OFFSET))" \
    COMMUNICATION_SERVICE_URL="http://127.0.0.1:$((8084 + OFFSET))" PUBLIC_BASE_URL="$CRM_URL" \
    "$CRM_BIN" serve >"$LOG" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 240); do
    if curl -fsS "$CRM_URL/ready" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
done
if ((!ready)); then
    tail -n 30 "$LOG"
    fail 1 "crm serve did not become ready"
    exit 1
fi

printf '\n==> web: the committed API client is current (npm run api:check)\n'
if (cd web && node scripts/generate-client.mjs --check --url "$CRM_URL"); then pass 1; else fail 1 "the API client (web/src/api/schema.d.ts) is stale"; fi

printf '\n==> web: component tests (vitest)\n'
vitest_log="$(mktemp)"
(cd web && npx vitest run) 2>&1 | tee "$vitest_log"
vitest_rc=${PIPESTATUS[0]}
p="$(sed -E 's/\x1b\[[0-9;]*m//g' "$vitest_log" | sed -nE 's/^ +Tests +.*\b([0-9]+) passed.*/\1/p' | tail -n 1)"
f="$(sed -E 's/\x1b\[[0-9;]*m//g' "$vitest_log" | sed -nE 's/^ +Tests +([0-9]+) failed.*/\1/p' | tail -n 1)"
pass "${p:-0}"
if ((vitest_rc != 0)); then fail "${f:-1}" "vitest"; fi
rm -f "$vitest_log"

printf '\n==> web: end-to-end tests in headless Chromium\n'
e2e_log="$(mktemp)"
(cd web && CRM_URL="$CRM_URL" E2E_MAIL_DIR="$MAIL_DIR" node --test --test-reporter=spec e2e/console.test.mjs) 2>&1 | tee "$e2e_log"
e2e_rc=${PIPESTATUS[0]}
p="$(sed -E 's/\x1b\[[0-9;]*m//g' "$e2e_log" | sed -nE 's/^ℹ pass ([0-9]+)$/\1/p' | tail -n 1)"
f="$(sed -E 's/\x1b\[[0-9;]*m//g' "$e2e_log" | sed -nE 's/^ℹ fail ([0-9]+)$/\1/p' | tail -n 1)"
pass "${p:-0}"
if ((e2e_rc != 0)); then
    fail "$(( ${f:-0} > 0 ? f : 1 ))" "end-to-end tests (server log: web/.e2e/crm-serve.log)"
    tail -n 20 "$LOG"
fi
rm -f "$e2e_log"
[[ -s $E2E_REPORT ]] && { printf '==> web: measured: '; tr -d '\n ' <"$E2E_REPORT"; printf '\n'; }
