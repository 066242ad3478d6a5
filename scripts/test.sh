#!/usr/bin/env bash
# Run the whole test suite against a real PostgreSQL and NATS (JetStream) on this machine.
#
# Usage: scripts/test.sh [TEST_ARGS...]
#   Installs/starts PostgreSQL and nats-server when needed (scripts/deps.sh), creates the test
#   database, then runs, in this order:
#     1. the Kubernetes manifests' validation (scripts/validate-k8s.sh), one check;
#     2. every test of the workspace: `cargo nextest run` when cargo-nextest is installed (plus
#        `cargo test --doc`, which nextest does not run), else `cargo test`;
#     3. the README's commands and walkthrough against the running platform
#        (scripts/check-readme.sh), one check;
#     4. the API contract against the running platform (scripts/api-check.sh): every served
#        OpenAPI document validated, and a bounded schema-driven fuzz pass, one check;
#     5. the web console (scripts/web-check.sh, against a `crm serve` it starts on free ports):
#        its build, the committed API client against the served OpenAPI document, the vitest
#        component tests and the end-to-end tests in headless Chromium, each test counted.
#   Extra arguments (e.g. a test-name filter) go to the test runner; doc tests and the README
#   check are then skipped. Whatever fails, every step runs, and the last line of the output is
#   one summary over everything that ran:  N passed, M failed, K skipped
#   (a step that stops before reporting its tests, e.g. a build error, counts as one failure).
#   Exit status 0 only when nothing failed.
#
# Environment (defaults in brackets):
#   DATABASE_URL          [postgres://postgres@127.0.0.1:5432/crm_test; PGUSER/PGHOST/PGPORT apply]
#   NATS_URL              [nats://127.0.0.1:4222]
#   JWT_SECRET            [a fixed test secret]
#   PLATFORM_ADMIN_TOKEN  [a fixed test token]
#   LOG_LEVEL             [warn]
#   TEST_DB_RESET         [1: drop and re-create the test database first]
#   CHECK_README          [1: run scripts/check-readme.sh at the end; 0: skip it]
#   CHECK_API             [1: run scripts/api-check.sh at the end; 0: skip it]
#   CHECK_WEB             [1: run scripts/web-check.sh at the end; 0: skip it]
#   INSTALL_NEXTEST       [0; 1: `cargo install --locked cargo-nextest` when it is missing,
#                          which compiles it from source (several minutes on 2 cores)]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

PASSED=0 FAILED=0 SKIPPED=0
FAILED_STEPS=()

strip_ansi() { sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1"; }

# Adds the counts of a `cargo test` log (one "test result:" line per test binary / doc-test
# run) to PASSED/FAILED/SKIPPED; FOUND = how many such lines there were.
count_cargo_test() {
    local counts
    counts="$(strip_ansi "$1" | awk '
        /^test result: / {
            for (i = 1; i <= NF; i++) {
                n = $(i - 1) + 0
                if ($i ~ /^passed/) p += n
                if ($i ~ /^failed/) f += n
                if ($i ~ /^ignored/) s += n
            }
            r++
        }
        END { printf "%d %d %d %d\n", p, f, s, r }')"
    local p f s r
    read -r p f s r <<<"$counts"
    PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
    FOUND=$r
}

# Adds the counts of a `cargo nextest run` log ("Summary [..] N tests run: P passed, F failed,
# T timed out, S skipped"); FOUND = 1 when it found that summary, else 0.
count_nextest() {
    local line
    line="$(strip_ansi "$1" | grep -E '^[[:space:]]*Summary \[.*tests? run:' | tail -n 1)"
    FOUND=0
    [[ -n $line ]] || return 0
    FOUND=1
    local p f t s
    p="$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$line")"
    f="$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")"
    t="$(sed -nE 's/.* ([0-9]+) timed out.*/\1/p' <<<"$line")"
    s="$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")"
    PASSED=$((PASSED + ${p:-0})) FAILED=$((FAILED + ${f:-0} + ${t:-0})) SKIPPED=$((SKIPPED + ${s:-0}))
}

# Adds the counts of scripts/web-check.sh's last line ("web: N passed, M failed").
count_web() {
    local line
    line="$(strip_ansi "$1" | grep -E '^web: [0-9]+ passed, [0-9]+ failed' | tail -n 1)"
    FOUND=0
    [[ -n $line ]] || return 0
    FOUND=1
    local p f
    p="$(sed -nE 's/^web: ([0-9]+) passed.*/\1/p' <<<"$line")"
    f="$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")"
    PASSED=$((PASSED + ${p:-0})) FAILED=$((FAILED + ${f:-0}))
}

# run_step NAME KIND COMMAND...: runs COMMAND with its output shown and logged, then adds its
# counts: KIND is "check" (one check: passed or failed by exit status), "cargo-test",
# "nextest" or "web" (scripts/web-check.sh). A failed runner that reported no failing test
# counts as one failure (build error, crash).
run_step() {
    local name="$1" kind="$2" log rc=0
    shift 2
    printf '\n==> %s (%s)\n' "$name" "$*"
    log="$(mktemp /tmp/crm-test-step.XXXXXX)"
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local failed_before=$FAILED
    FOUND=1
    case "$kind" in
        check) if ((rc == 0)); then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi ;;
        cargo-test) count_cargo_test "$log" ;;
        nextest) count_nextest "$log" ;;
        web) count_web "$log" ;;
    esac
    if ((rc != 0)); then
        if ((FAILED == failed_before)); then
            FAILED=$((FAILED + 1))
            printf '==> %s stopped (exit %d) without a failing test to show for it: counted as one failure\n' "$name" "$rc"
        fi
        FAILED_STEPS+=("$name")
    elif ((FOUND == 0)); then
        printf '==> %s: found no test results in its output\n' "$name"
    fi
    rm -f "$log"
    return 0
}

summary() {
    local rc=$?
    local line="$PASSED passed, $FAILED failed"
    ((SKIPPED > 0)) && line="$line, $SKIPPED skipped"
    if ((${#FAILED_STEPS[@]} > 0)); then
        printf '\n==> failed: %s\n' "${FAILED_STEPS[*]}"
    fi
    printf '\n%s\n' "$line"
    if ((FAILED > 0)); then exit 1; fi
    exit "$rc"
}

# (Sourced, e.g. to test the counting: stop here.)
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

trap summary EXIT

cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x $cargo_bin/cargo ]]; then
    PATH="$cargo_bin:$PATH"
fi

export DATABASE_URL="${DATABASE_URL:-postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/crm_test}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export JWT_SECRET="${JWT_SECRET:-crm-test-jwt-secret-not-for-production-0123456789}"
export PLATFORM_ADMIN_TOKEN="${PLATFORM_ADMIN_TOKEN:-crm-test-platform-admin-token}"
export LOG_LEVEL="${LOG_LEVEL:-warn}"
# Colours survive the `tee` into the step logs (and are stripped before counting).
[[ -t 1 && -z ${CARGO_TERM_COLOR:-} ]] && export CARGO_TERM_COLOR=always

if ! DEPS_REQUIRE_RUST=1 DEPS_BROWSER=$([[ ${CHECK_WEB:-1} == 1 ]] && echo 1 || echo 0) ./scripts/deps.sh; then
    FAILED=$((FAILED + 1)) FAILED_STEPS+=("scripts/deps.sh")
    exit 1
fi

# A fresh test database every run: the suite creates hundreds of tenant schemas per run.
if [[ ${TEST_DB_RESET:-1} == 1 ]]; then
    test_db="${DATABASE_URL##*/}"
    test_db="${test_db%%\?*}"
    if ! psql "${DATABASE_URL%/*}/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$test_db\" WITH (FORCE)" -c "CREATE DATABASE \"$test_db\"" ||
        ! psql "$DATABASE_URL" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "CREATE EXTENSION IF NOT EXISTS unaccent"; then
        FAILED=$((FAILED + 1)) FAILED_STEPS+=("re-creating the test database")
        exit 1
    fi
fi

# A streaming replica of the local cluster for the read-replica tests (DATABASE_READ_URL, issue
# 14 item 4); they start it themselves too, and skip only where it cannot run (not root).
./scripts/replica.sh start || printf '==> scripts/replica.sh failed: the read-replica tests will say why\n'

if ! cargo nextest --version >/dev/null 2>&1 && [[ ${INSTALL_NEXTEST:-0} == 1 ]]; then
    printf '\n==> installing cargo-nextest (cargo install --locked cargo-nextest)\n'
    cargo install --locked cargo-nextest || printf '==> installing cargo-nextest failed: using cargo test\n'
fi

run_step "Kubernetes manifests" check ./scripts/validate-k8s.sh

if cargo nextest --version >/dev/null 2>&1; then
    if (($# == 0)); then
        run_step "doc tests" cargo-test cargo test --workspace --doc
    else
        SKIPPED=$((SKIPPED + 1))
        printf '\n==> doc tests skipped (test arguments given)\n'
    fi
    run_step "tests" nextest cargo nextest run --workspace --no-fail-fast --no-tests=warn "$@"
else
    printf '\n(cargo-nextest is not installed: cargo test runs the tests; INSTALL_NEXTEST=1 installs it)\n'
    run_step "tests" cargo-test cargo test --workspace --no-fail-fast "$@"
fi

if (($# == 0)) && [[ ${CHECK_README:-1} == 1 ]]; then
    run_step "README walkthrough" check ./scripts/check-readme.sh
else
    SKIPPED=$((SKIPPED + 1))
    printf '\n==> README walkthrough skipped (%s)\n' "$( (($# > 0)) && echo 'test arguments given' || echo CHECK_README=0)"
fi

if (($# == 0)) && [[ ${CHECK_API:-1} == 1 ]]; then
    run_step "API contract (OpenAPI validation, schemathesis)" check ./scripts/api-check.sh
else
    SKIPPED=$((SKIPPED + 1))
    printf '\n==> API contract check skipped (%s)\n' "$( (($# > 0)) && echo 'test arguments given' || echo CHECK_API=0)"
fi

if (($# == 0)) && [[ ${CHECK_WEB:-1} == 1 ]]; then
    run_step "web console (build, API client, vitest, Chromium end-to-end)" web ./scripts/web-check.sh
else
    SKIPPED=$((SKIPPED + 1))
    printf '\n==> web console checks skipped (%s)\n' "$( (($# > 0)) && echo 'test arguments given' || echo CHECK_WEB=0)"
fi
