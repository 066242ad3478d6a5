#!/usr/bin/env bash
# Run the whole test suite against a real PostgreSQL and NATS (JetStream) on this machine.
#
# Usage: scripts/test.sh [NEXTEST_ARGS...]
#   Installs/starts PostgreSQL and nats-server when needed (scripts/deps.sh), creates the test
#   database, then runs every test of the workspace: `cargo nextest run` when cargo-nextest is
#   installed (plus `cargo test --doc`, which nextest does not run), else `cargo test`.
#   Extra arguments (e.g. a test-name filter) go to the test runner; doc tests are then skipped.
#
# Environment (defaults in brackets):
#   DATABASE_URL          [postgres://postgres@127.0.0.1:5432/crm_test; PGUSER/PGHOST/PGPORT apply]
#   NATS_URL              [nats://127.0.0.1:4222]
#   JWT_SECRET            [a fixed test secret]
#   PLATFORM_ADMIN_TOKEN  [a fixed test token]
#   LOG_LEVEL             [warn]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x $cargo_bin/cargo ]]; then
    PATH="$cargo_bin:$PATH"
fi

export DATABASE_URL="${DATABASE_URL:-postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/crm_test}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export JWT_SECRET="${JWT_SECRET:-crm-test-jwt-secret-not-for-production-0123456789}"
export PLATFORM_ADMIN_TOKEN="${PLATFORM_ADMIN_TOKEN:-crm-test-platform-admin-token}"
export LOG_LEVEL="${LOG_LEVEL:-warn}"

DEPS_REQUIRE_RUST=1 ./scripts/deps.sh

# A fresh test database every run: the suite creates hundreds of tenant schemas per run.
if [[ ${TEST_DB_RESET:-1} == 1 ]]; then
    test_db="${DATABASE_URL##*/}"
    test_db="${test_db%%\?*}"
    psql "${DATABASE_URL%/*}/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$test_db\" WITH (FORCE)" -c "CREATE DATABASE \"$test_db\""
    psql "$DATABASE_URL" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_trgm"
fi

printf '\n==> Kubernetes manifests (scripts/validate-k8s.sh)\n'
./scripts/validate-k8s.sh

doc_rc=0
if cargo nextest --version >/dev/null 2>&1; then
    if (($# == 0)); then
        printf '\n==> doc tests (cargo test --workspace --doc)\n'
        cargo test --workspace --doc || doc_rc=$?
        if ((doc_rc != 0)); then
            printf '\n==> doc tests FAILED (exit %d, see above); running the other tests anyway\n' "$doc_rc"
        fi
    fi
    printf '\n==> tests (cargo nextest run --workspace --no-fail-fast)\n'
    rc=0
    cargo nextest run --workspace --no-fail-fast --no-tests=warn "$@" || rc=$?
    if ((doc_rc != 0)); then
        printf 'error: doc tests failed (exit %d, see above)\n' "$doc_rc" >&2
        exit "$doc_rc"
    fi
    exit "$rc"
else
    printf '\n==> tests (cargo test --workspace --no-fail-fast; cargo-nextest is not installed)\n'
    exec cargo test --workspace --no-fail-fast "$@"
fi
