#!/usr/bin/env bash
# Run the whole platform on this machine: all five services in one process (the `crm` binary).
#
# Usage: scripts/run.sh [SERVE_ARGS...]
#   Installs/starts PostgreSQL and nats-server when needed (scripts/deps.sh), creates the
#   database, builds the web console (web/, `npm ci && npm run build`) and `crm` in release
#   mode and serves (`crm serve --demo`, in the foreground;
#   Ctrl-C stops it), seeding a demo tenant once the services listen and printing how to log in.
#
# Environment (defaults in brackets):
#   DATABASE_URL          [postgres://postgres@127.0.0.1:5432/crm; PGUSER/PGHOST/PGPORT apply]
#   NATS_URL              [nats://127.0.0.1:4222]
#   JWT_SECRET            [generated once into .data/jwt_secret]
#   PLATFORM_ADMIN_TOKEN  [generated once into .data/platform_admin_token]
#   LOG_LEVEL             [warn: start-up info lines would bury the demo login]
#   LOG_FORMAT            [pretty when stderr is a terminal, else json]
#   and the rest of the configuration in README.md.
#
# The demo login is the last thing printed. The `./crm` wrapper at the repository root runs
# the operator commands (`./crm --help`) against the same database and token.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if ! command -v cargo >/dev/null 2>&1 && [[ -x $cargo_bin/cargo ]]; then
    PATH="$cargo_bin:$PATH"
fi

# Prints the secret kept in .data/NAME, generating it on first use.
local_secret() {
    local file=".data/$1"
    if [[ ! -s $file ]]; then
        mkdir -p .data
        (
            umask 077
            head -c 32 /dev/urandom | base64 >"$file.$$"
            mv "$file.$$" "$file"
        )
    fi
    cat "$file"
}

export DATABASE_URL="${DATABASE_URL:-postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/crm}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
JWT_SECRET="${JWT_SECRET:-$(local_secret jwt_secret)}"
admin_token_from="\$PLATFORM_ADMIN_TOKEN"
if [[ -z ${PLATFORM_ADMIN_TOKEN:-} ]]; then
    PLATFORM_ADMIN_TOKEN="$(local_secret platform_admin_token)"
    admin_token_from=".data/platform_admin_token"
fi
export JWT_SECRET PLATFORM_ADMIN_TOKEN
export LOG_LEVEL="${LOG_LEVEL:-warn}"
if [[ -z ${LOG_FORMAT:-} && -t 2 ]]; then
    export LOG_FORMAT=pretty
fi

DEPS_REQUIRE_RUST=1 ./scripts/deps.sh

printf '\n==> building the web console (web/: npm ci && npm run build; crm serve serves it at /)\n'
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)

printf '\n==> building crm (cargo build --release --bin crm)\n'
cargo build --release --bin crm
crm="${CARGO_TARGET_DIR:-target}/release/crm"

printf '\n==> serving (crm serve --demo: seeds the demo tenant once up, then prints its login; Ctrl-C stops)\n'
printf '    platform admin token: %s; logs at LOG_LEVEL=%s\n' "$admin_token_from" "$LOG_LEVEL"
exec "$crm" serve --demo "$@"
