#!/usr/bin/env bash
# Checks the README against the real platform, from the README's own text, so that the README
# cannot drift from what works:
#   1. `./crm --help` and `./crm tenant --help` (the operator commands the README names);
#   2. `crm serve --demo` on a fresh database and a nats-server of its own, on free ports
#      (CRM_PORT_OFFSET), until /ready answers 200 and the demo login is printed, last;
#   3. the curl walkthrough: the first ```sh block under "## Using the platform", run as
#      written by bash (set -euo pipefail) in a scratch directory holding the operator token in
#      .data/platform_admin_token. The only change made to it: the combined port 8000 becomes
#      the chosen one. Every curl request must answer 2xx;
#   4. the final checks: every `# "text"` comment at the end of a walkthrough line names output
#      that must appear in what the walkthrough printed (e.g. the activity the deal.closed_won
#      event creates), and `./crm tenant list` lists the tenant the walkthrough signed up.
# Prints `check-readme: ok (...)` or the failed step with the platform's log tail; exit 0/1.
#
# Usage: scripts/check-readme.sh
# Environment:
#   CRM_BIN          the crm binary to run [built: cargo build --bin crm (test.sh's profile)]
#   CRM_PROFILE      cargo profile to build when CRM_BIN is unset [dev; run.sh builds release]
#   DATABASE_URL     server on which the scratch database crm_readme_<pid> is created and
#                    dropped [postgres://postgres@127.0.0.1:5432/postgres; PGUSER/PGHOST/PGPORT]
#   CRM_PORT_OFFSET  port offset of the platform [the first free one from 21000 on]
#   README           the file to check [README.md]
#   KEEP=1           keep the scratch directory (logs, walkthrough) even on success
# Needs PostgreSQL running (scripts/deps.sh), nats-server installed and curl.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
README="${README:-README.md}"

say() { printf 'check-readme: %s\n' "$*"; }
fail() {
    printf 'check-readme: FAILED: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    if [[ -n ${LOG:-} && -s ${LOG:-} ]]; then
        printf -- '--- crm serve log (last 40 lines; whole log: %s) ---\n' "$LOG" >&2
        tail -n 40 "$LOG" >&2
        printf -- '--- end of crm serve log ---\n' >&2
    fi
    KEEP=1
    exit 1
}

# shellcheck disable=SC2016 # $0/$1 expand in the inner shell
port_free() { ! timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# The walkthrough, as the README has it
# ---------------------------------------------------------------------------------------------
[[ -f $README ]] || fail "$README not found"
walkthrough="$(awk '
    /^## / { in_section = ($0 ~ /^## Using the platform[[:space:]]*$/); next }
    in_section && !in_block && /^```sh[[:space:]]*$/ { in_block = 1; next }
    in_block && /^```[[:space:]]*$/ { exit }
    in_block { print }
' "$README")"
[[ -n $walkthrough ]] ||
    fail "no \`\`\`sh block under \"## Using the platform\" in $README (the walkthrough this script runs)"
grep -q 'http://127.0.0.1:8000' <<<"$walkthrough" ||
    fail "the walkthrough does not use http://127.0.0.1:8000 (the combined port this script redirects)"
mapfile -t expected < <(sed -nE 's/.*[^[:space:]].*#[[:space:]]+"([^"]+)"[[:space:]]*$/\1/p' <<<"$walkthrough")

# ---------------------------------------------------------------------------------------------
# Scratch directory, database, NATS, ports
# ---------------------------------------------------------------------------------------------
cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x $cargo_bin/cargo ]]; then
    PATH="$cargo_bin:$PATH"
fi
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh installs it)"
NATS_BIN="$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)"
[[ -x $NATS_BIN ]] || fail "nats-server is not installed (scripts/deps.sh installs it)"

WORK="$(mktemp -d /tmp/crm-check-readme.XXXXXX)"
LOG="$WORK/crm-serve.log"
DB="crm_readme_$$"
SERVER_URL="${DATABASE_URL:-postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/postgres}"
SERVER_URL="${SERVER_URL%%\?*}"
SERVER_URL="${SERVER_URL%/*}"
CRM_PID="" NATS_PID="" DB_CREATED=0
cleanup() {
    local rc=$?
    # A killed child's status (143) must not become this script's.
    if [[ -n $CRM_PID ]]; then kill "$CRM_PID" 2>/dev/null; wait "$CRM_PID" 2>/dev/null || true; fi
    if [[ -n $NATS_PID ]]; then kill "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null || true; fi
    if ((DB_CREATED)); then
        psql -X -q "$SERVER_URL/postgres" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        printf 'check-readme: scratch directory kept: %s\n' "$WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${CRM_BIN:-} ]]; then
    [[ -x $CRM_BIN ]] || fail "CRM_BIN=$CRM_BIN is not an executable"
else
    profile="${CRM_PROFILE:-dev}"
    say "building crm (cargo build --profile $profile --bin crm)"
    cargo build --quiet --profile "$profile" --bin crm || fail "cargo build --profile $profile --bin crm failed"
    dir="$profile"
    [[ $profile == dev ]] && dir=debug
    CRM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$dir/crm"
fi
export CRM_BIN

# 1. The operator commands named in the README, through the ./crm wrapper.
for args in "--help" "tenant --help"; do
    # shellcheck disable=SC2086 # split on purpose
    CRM_NO_BUILD=1 ./crm $args >"$WORK/help.txt" 2>&1 || fail "./crm $args failed" "$(cat "$WORK/help.txt")"
done
for command in migrate tenant demo serve; do
    grep -qE "^  $command " < <(CRM_NO_BUILD=1 ./crm --help) || fail "./crm --help does not list $command"
done

psql -X -q "$SERVER_URL/postgres" -c "CREATE DATABASE \"$DB\"" >/dev/null ||
    fail "cannot create the scratch database $DB on $SERVER_URL (is PostgreSQL up? scripts/deps.sh)"
DB_CREATED=1
psql -X -q "$SERVER_URL/$DB" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' -c 'CREATE EXTENSION IF NOT EXISTS unaccent' >/dev/null

offset="${CRM_PORT_OFFSET:-}"
if [[ -z $offset ]]; then
    for try in $(seq 21000 10 23990); do
        all_free=1
        for p in 8000 8080 8081 8082 8083 8084; do
            port_free $((p + try)) || { all_free=0; break; }
        done
        ((all_free)) && { offset=$try; break; }
    done
    [[ -n $offset ]] || fail "no free port offset between 21000 and 23990"
fi
PORT=$((8000 + offset))
nats_port=""
for try in $(seq $((4222 + offset)) $((4222 + offset + 50))); do
    port_free "$try" && { nats_port=$try; break; }
done
[[ -n $nats_port ]] || fail "no free port for nats-server"
"$NATS_BIN" -a 127.0.0.1 -p "$nats_port" -js -sd "$WORK/jetstream" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!

# ---------------------------------------------------------------------------------------------
# 2. crm serve --demo
# ---------------------------------------------------------------------------------------------
mkdir -p "$WORK/walk/.data"
OPERATOR_TOKEN="check-readme-operator-token-$$-$RANDOM$RANDOM"
printf '%s\n' "$OPERATOR_TOKEN" >"$WORK/walk/.data/platform_admin_token"
(
    unset CRM_PORT PORT
    export DATABASE_URL="$SERVER_URL/$DB" NATS_URL="nats://127.0.0.1:$nats_port"
    export CRM_PORT_OFFSET="$offset" PLATFORM_ADMIN_TOKEN="$OPERATOR_TOKEN"
    export JWT_SECRET="check-readme-jwt-secret-0123456789-0123456789"
    export LOG_LEVEL=warn LOG_FORMAT=json BIND_ADDR=127.0.0.1 MIGRATE_ON_START=true
    export PUBLIC_BASE_URL="http://127.0.0.1:$((8000 + offset))" EMAIL_SINK_DIR="$WORK/mail"
    export AUTH_SERVICE_URL="http://127.0.0.1:$((8080 + offset))" TENANT_SERVICE_URL="http://127.0.0.1:$((8081 + offset))"
    export CONTACT_SERVICE_URL="http://127.0.0.1:$((8082 + offset))" DEAL_SERVICE_URL="http://127.0.0.1:$((8083 + offset))"
    export COMMUNICATION_SERVICE_URL="http://127.0.0.1:$((8084 + offset))"
    exec "$CRM_BIN" serve --demo
) >"$LOG" 2>&1 &
CRM_PID=$!
say "crm serve --demo on port $PORT (offset $offset), database $DB, nats-server on $nats_port"

deadline=$((SECONDS + ${START_TIMEOUT:-120}))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready" 2>/dev/null)" == 200 ]]; do
    kill -0 "$CRM_PID" 2>/dev/null || fail "crm serve exited before it was ready"
    ((SECONDS < deadline)) || fail "crm serve not ready on port $PORT after ${START_TIMEOUT:-120}s"
    sleep 0.5
done
# The demo login: printed once the demo tenant is seeded, as the last lines of the output.
until grep -q 'password:' "$LOG"; do
    kill -0 "$CRM_PID" 2>/dev/null || fail "crm serve exited before printing the demo login"
    ((SECONDS < deadline)) || fail "no demo login printed after ${START_TIMEOUT:-120}s"
    grep -q 'demo seeding failed' "$LOG" && fail "seeding the demo tenant failed"
    sleep 0.5
done
sleep 1 # anything printed after the login would show up here
last="$(grep -v '^[[:space:]]*$' "$LOG" | tail -n 1)"
[[ $last == *"-d '{\"tenant\": \"demo\""* ]] ||
    fail "the demo login is not the last thing crm serve --demo printed; the last line is:" "$last"

# ---------------------------------------------------------------------------------------------
# 3. The walkthrough, with every curl request checked for a 2xx answer
# ---------------------------------------------------------------------------------------------
{
    cat <<'PRELUDE'
set -euo pipefail
# Every request of the walkthrough must answer 2xx: curl runs through this function, which
# passes the answer on unchanged and stops the walkthrough on anything else.
curl() {
    local body status rc=0
    body="$(mktemp "$CHECK_WORK/body.XXXXXX")"
    status="$(command curl -sS -o "$body" -w '%{http_code}' "$@")" || rc=$?
    printf '%s curl %s\n' "${status:-000}" "$*" >>"$CHECK_WORK/requests.log"
    if ((rc != 0)) || [[ $status != 2?? ]]; then
        {
            printf '\ncheck-readme: a walkthrough request failed (HTTP %s, curl exit %d):\n  curl %s\n' "${status:-none}" "$rc" "$*"
            printf '  answer: %s\n' "$(head -c 2000 "$body")"
        } >&2
        exit 1
    fi
    cat "$body" 2>/dev/null || true
    rm -f "$body"
}
PRELUDE
    printf '%s\n' "${walkthrough//http:\/\/127.0.0.1:8000/http://127.0.0.1:$PORT}"
} >"$WORK/walkthrough.sh"

say "running the README walkthrough ($(grep -c . <<<"$walkthrough") lines)"
set +e
(cd "$WORK/walk" && CHECK_WORK="$WORK" timeout "${WALK_TIMEOUT:-120}" bash "$WORK/walkthrough.sh") >"$WORK/walkthrough.out" 2>"$WORK/walkthrough.err"
walk_rc=$?
set -e
requests="$(grep -c . "$WORK/requests.log" 2>/dev/null || echo 0)"
if ((walk_rc != 0)); then
    fail "the README walkthrough stopped (exit $walk_rc) after $requests requests:" \
        "$(tail -n 15 "$WORK/walkthrough.err")" "(script: $WORK/walkthrough.sh, output: $WORK/walkthrough.out)"
fi
((requests >= 10)) || fail "the walkthrough made only $requests requests (expected the whole walkthrough)"

# ---------------------------------------------------------------------------------------------
# 4. Final checks
# ---------------------------------------------------------------------------------------------
((${#expected[@]} > 0)) || fail "no '# \"expected output\"' comments in the walkthrough: nothing to check its output against"
for text in "${expected[@]}"; do
    grep -qF -- "$text" "$WORK/walkthrough.out" ||
        fail "the walkthrough's output lacks \"$text\" (which the README says it shows)" \
            "output: $WORK/walkthrough.out" "$(tail -c 1500 "$WORK/walkthrough.out")"
done
tenants="$(DATABASE_URL="$SERVER_URL/$DB" PLATFORM_ADMIN_TOKEN="$OPERATOR_TOKEN" CRM_NO_BUILD=1 ./crm tenant list 2>&1)" ||
    fail "./crm tenant list failed:" "$tenants"
grep -qE '[[:space:]]acme[[:space:]]' <<<"$tenants" ||
    fail "./crm tenant list does not list the tenant acme the walkthrough signed up:" "$tenants"

say "ok ($requests requests of the README walkthrough answered 2xx; ${#expected[@]} expected outputs seen; demo login printed last)"
