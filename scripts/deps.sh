#!/usr/bin/env bash
# Make sure everything the platform needs to build and run is installed, running and reachable:
#   - what building the workspace needs besides Rust: a C compiler and linker (gcc, libc6-dev;
#     rustc links with `cc`, and ring and aws-lc-sys compile C), pkg-config, ca-certificates
#     (cargo downloads crates over HTTPS), and curl (the README walkthrough)
#   - PostgreSQL (with pg_trgm and unaccent from postgresql-contrib), trusting local TCP
#     connections from 127.0.0.1 / ::1; when no cluster serves the asked local port, one is
#     created for it (a free cluster name) and configured like the existing default cluster
#   - nats-server with JetStream
#   - Node.js (18.19+) and npm for the web console, and Chromium for its browser tests when
#     DEPS_BROWSER=1
#   - the databases the caller asks for, each with the pg_trgm extension
# and check that the Rust toolchain compiles and links a program.
#
# Idempotent: on a machine where all of this already runs it only checks (and creates missing
# databases). On a fresh Debian 12 / Ubuntu 22.04+ machine it installs the Debian packages it
# needs (gcc, libc6-dev, pkg-config, libclang-dev, ca-certificates, curl, postgresql, postgresql-contrib,
# nats-server) and starts the servers. Must run as root, or as a user with sudo, whenever
# something has to be installed, started or reconfigured. The Rust toolchain itself (rustup) is
# not installed.
#
# Usage: scripts/deps.sh [DBNAME...]
#   Databases to create: the arguments; else the database named in DATABASE_URL; else crm and
#   crm_test.
#
# Environment:
#   DATABASE_URL       postgres://user[:password]@host[:port]/dbname; host, port and user are
#                      taken from it when set
#   PGHOST, PGPORT,    used when DATABASE_URL is not set (defaults 127.0.0.1, 5432, postgres)
#   PGUSER
#   NATS_URL           nats://host:port (default nats://127.0.0.1:4222)
#   DEPS_TIMEOUT       seconds to wait for a server to become ready (default 30)
#   DEPS_REQUIRE_RUST  1: fail when no usable Rust toolchain is found (test.sh and run.sh set it)
#   DEPS_BROWSER       1: also install Debian's chromium (test.sh sets it: the console's tests)
#
# Servers are only installed/started/reconfigured when their host is local (127.0.0.1,
# localhost, ::1 or a socket directory); a remote server is only checked.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS_TIMEOUT="${DEPS_TIMEOUT:-30}"
HBA_MARKER="# added by crm scripts/deps.sh: passwordless local TCP for the platform's database user"

status() { printf '%-9s %-5s %s\n' "$1" "$2" "$3"; }
die() {
    printf 'deps.sh: error: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
case "${1:-}" in -h | --help) usage; exit 0 ;; esac

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $*" "run this script as root (or install sudo)"
    fi
}

is_local_host() {
    case "$1" in
        "" | 127.0.0.1 | localhost | ::1 | /*) return 0 ;;
        *) return 1 ;;
    esac
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.25 s until it succeeds or time runs out.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}

# shellcheck disable=SC2016 # $0/$1 expand in the inner shell
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

percent_decode() { printf '%b' "${1//%/\\x}"; }

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
PG_USER="${PGUSER:-postgres}"
URL_DB=""
if [[ -n "${DATABASE_URL:-}" ]]; then
    re='^postgres(ql)?://([^/?#]*)(/([^?#]*))?([?#].*)?$'
    [[ $DATABASE_URL =~ $re ]] ||
        die "DATABASE_URL is not a postgres:// URL: $DATABASE_URL"
    authority="${BASH_REMATCH[2]}"
    URL_DB="$(percent_decode "${BASH_REMATCH[4]}")"
    hostport="$authority"
    if [[ $authority == *@* ]]; then
        userinfo="${authority%@*}"
        hostport="${authority##*@}"
        [[ -n ${userinfo%%:*} ]] && PG_USER="$(percent_decode "${userinfo%%:*}")"
        if [[ $userinfo == *:* ]]; then
            PGPASSWORD="$(percent_decode "${userinfo#*:}")"
            export PGPASSWORD
        fi
    fi
    if [[ $hostport =~ ^\[([^]]+)\](:([0-9]+))?$ ]] || [[ $hostport =~ ^([^:]*)(:([0-9]+))?$ ]]; then
        [[ -n ${BASH_REMATCH[1]} ]] && PG_HOST="${BASH_REMATCH[1]}"
        [[ -n ${BASH_REMATCH[3]} ]] && PG_PORT="${BASH_REMATCH[3]}"
    else
        die "cannot parse host:port in DATABASE_URL: $hostport"
    fi
fi

if (($# > 0)); then
    DATABASES=("$@")
elif [[ -n $URL_DB ]]; then
    DATABASES=("$URL_DB")
else
    DATABASES=(crm crm_test)
fi
for db in "${DATABASES[@]}"; do
    [[ $db =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] ||
        die "database name '$db' must match [A-Za-z_][A-Za-z0-9_]*"
done

NATS_URL_EFFECTIVE="${NATS_URL:-nats://127.0.0.1:4222}"
nats_hostport="${NATS_URL_EFFECTIVE%%,*}"       # first server of a list
nats_hostport="${nats_hostport#*://}"           # scheme
nats_hostport="${nats_hostport##*@}"            # credentials
nats_hostport="${nats_hostport%%/*}"
if [[ $nats_hostport =~ ^\[([^]]+)\](:([0-9]+))?$ ]] || [[ $nats_hostport =~ ^([^:]*)(:([0-9]+))?$ ]]; then
    NATS_HOST="${BASH_REMATCH[1]:-127.0.0.1}"
    NATS_PORT="${BASH_REMATCH[3]:-4222}"
else
    die "cannot parse host:port in NATS_URL: $NATS_URL_EFFECTIVE"
fi
[[ $NATS_HOST == localhost ]] && NATS_HOST=127.0.0.1

# ---------------------------------------------------------------------------------------------
# Rust toolchain (checked first: it is quick and test.sh/run.sh cannot do anything without it)
# ---------------------------------------------------------------------------------------------
check_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-${HOME:-/root}/.cargo}/bin/cargo" ]]; then
        PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
    fi
    local need
    need="$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml" 2>/dev/null | head -n1)"
    need="${need:-1.89}"
    local problem=""
    if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
        problem="no cargo/rustc on PATH (nor in ~/.cargo/bin)"
    else
        local have
        have="$(rustc --version 2>/dev/null | awk '{print $2}')"
        if [[ -z $have ]]; then
            problem="rustc does not run (rustup without an installed toolchain?)"
        elif [[ "$(printf '%s\n%s\n' "$need" "${have%%-*}" | sort -V | head -n1)" != "$need" ]]; then
            problem="rustc $have is older than the workspace's rust-version $need"
        else
            RUST_VERSION="$have"
            return 0
        fi
    fi
    status rust ERROR "$problem"
    local help=(
        "The Rust toolchain is not installed by this script. Install rustc >= $need with rustup"
        "(https://rustup.rs), then re-run; Debian's own rustc/cargo packages are too old."
    )
    if [[ ${DEPS_REQUIRE_RUST:-0} == 1 ]]; then
        die "$problem" "${help[@]}"
    fi
    printf '  %s\n' "${help[@]}" >&2
}

# Compiles, links and runs a tiny Rust program: `rustc --version` alone passes on a machine
# without a linker, where every build then stops at "linker `cc` not found".
check_rust_links() {
    [[ -n ${RUST_VERSION:-} ]] || return 0
    local dir out
    dir="$(mktemp -d /tmp/crm-deps-rustc.XXXXXX)"
    printf 'fn main() { println!("linked"); }\n' >"$dir/probe.rs"
    if rustc --edition 2021 -o "$dir/probe" "$dir/probe.rs" >"$dir/log" 2>&1 &&
        out="$("$dir/probe" 2>&1)" && [[ $out == linked ]]; then
        rm -rf "$dir"
    else
        local log
        log="$(grep -v '^ *= note: *"' "$dir/log" | head -n 12)"
        rm -rf "$dir"
        status rust ERROR "rustc $RUST_VERSION cannot compile and link a program"
        local help=("$log" "a C toolchain is needed to link: apt-get install gcc libc6-dev (this script installs"
            "them when it finds cargo or DEPS_REQUIRE_RUST=1 is set)")
        if [[ ${DEPS_REQUIRE_RUST:-0} == 1 ]]; then
            die "rustc cannot link a program" "${help[@]}"
        fi
        printf '  %s\n' "${help[@]}" >&2
        return 0
    fi
    local nextest="cargo-nextest not installed: test.sh falls back to cargo test"
    if cargo nextest --version >/dev/null 2>&1; then
        nextest="$(cargo nextest --version 2>/dev/null | head -n1 | awk '{print $1" "$2}')"
    fi
    status rust ok "rustc $RUST_VERSION (compiles and links), $nextest"
}

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
NATS_BIN=/usr/sbin/nats-server
[[ -x $NATS_BIN ]] || NATS_BIN="$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)"

# True when `cc` compiles and links a C program (what rustc's linking and the C parts of ring
# and aws-lc-sys need).
c_toolchain_works() {
    command -v cc >/dev/null 2>&1 || return 1
    local dir rc=0
    dir="$(mktemp -d /tmp/crm-deps-cc.XXXXXX)"
    printf 'int main(void) { return 0; }\n' >"$dir/probe.c"
    cc -o "$dir/probe" "$dir/probe.c" >/dev/null 2>&1 && "$dir/probe" || rc=1
    rm -rf "$dir"
    return "$rc"
}

# Debian packages the build needs besides the Rust toolchain. aws-lc-sys (TLS, via lettre and
# jsonwebtoken) builds with its cc-based builder and pregenerated bindings on x86_64 and
# aarch64 Linux, so neither cmake nor clang is needed there; other architectures fall back
# to its CMake build.
build_packages() {
    # Only where Rust code is built (test.sh and run.sh set DEPS_REQUIRE_RUST=1).
    [[ -n ${RUST_VERSION:-} || ${DEPS_REQUIRE_RUST:-0} == 1 ]] || return 0
    c_toolchain_works || printf '%s\n' gcc libc6-dev
    command -v pkg-config >/dev/null 2>&1 || printf '%s\n' pkg-config
    # pg_query (PostgreSQL's parser, used by the migration runner) compiles libpg_query with
    # cc and runs bindgen, which loads libclang (libclang-dev: the library and clang's headers).
    compgen -G '/usr/lib/llvm-*/lib/libclang.so' >/dev/null || compgen -G '/usr/lib/*/libclang.so' >/dev/null ||
        printf '%s\n' libclang-dev
    case "$(uname -m)" in
        x86_64 | aarch64) ;;
        *) command -v cmake >/dev/null 2>&1 || printf '%s\n' cmake ;;
    esac
}

install_missing_packages() {
    local pkgs=()
    mapfile -t pkgs < <(build_packages)
    [[ -s /etc/ssl/certs/ca-certificates.crt ]] || pkgs+=(ca-certificates)
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    # The web console (web/): Node.js (18.19 or newer) and npm build it; Chromium runs its
    # browser tests (DEPS_BROWSER=1, set by test.sh; playwright-core drives it, no download).
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    if [[ ${DEPS_BROWSER:-0} == 1 ]] && ! command -v chromium >/dev/null 2>&1; then pkgs+=(chromium); fi
    if is_local_host "$PG_HOST"; then
        if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null ||
            ! compgen -G '/usr/share/postgresql/*/extension/pg_trgm.control' >/dev/null ||
            ! compgen -G '/usr/share/postgresql/*/extension/unaccent.control' >/dev/null ||
            ! command -v pg_ctlcluster >/dev/null || ! command -v psql >/dev/null; then
            pkgs+=(postgresql postgresql-contrib)
        fi
    elif ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
        pkgs+=(postgresql-client)
    fi
    if is_local_host "$NATS_HOST" && [[ ! -x $NATS_BIN ]] && ! tcp_open "$NATS_HOST" "$NATS_PORT"; then
        pkgs+=(nats-server)
    fi
    ((${#pkgs[@]} > 0)) || return 0

    command -v apt-get >/dev/null 2>&1 ||
        die "missing: ${pkgs[*]}" "this script installs them with apt-get (Debian/Ubuntu); install them by hand"
    printf 'deps.sh: installing %s (Debian packages) ...\n' "${pkgs[*]}"
    local log
    log="$(mktemp /tmp/crm-deps-apt.XXXXXX)"
    # A failed update is not fatal by itself: the install may still work from the old lists.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
        printf 'deps.sh: warning: apt-get update failed; trying to install anyway\n' >&2
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${pkgs[@]}" >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "apt-get failed to install ${pkgs[*]} (full log: $log)"
    fi
    rm -f "$log"
    [[ -x $NATS_BIN ]] || NATS_BIN="$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)"
    INSTALLED=1
}

# The console's build (Vite 6) needs Node.js 18.19 or newer: Debian 12 has 18.19, Debian 13
# and Ubuntu 24.04 newer; Ubuntu 22.04's nodejs package (12) is too old.
check_node() {
    local version
    version="$(node --version 2>/dev/null)" || die "node is missing after installing nodejs"
    local major="${version#v}" minor
    minor="${major#*.}" minor="${minor%%.*}" major="${major%%.*}"
    if ((major < 18 || (major == 18 && minor < 19))); then
        die "Node.js $version is too old for the web console (web/): 18.19 or newer is needed" \
            "install a newer nodejs package (e.g. from your distribution's backports or nodesource) and re-run"
    fi
    status node ok "Node.js $version, npm $(npm --version 2>/dev/null || echo '?')"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

# Prints "<version> <cluster> <status>" of the cluster configured for $PG_PORT, if any.
cluster_for_port() {
    pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port {print $1, $2, $4; exit}'
}

listen_covers_host() {
    local listen="$1"
    listen="${listen//\'/}"
    listen="${listen// /}"
    [[ $PG_HOST == /* ]] && return 0
    local addr addrs
    IFS=, read -r -a addrs <<<"$listen"
    for addr in "${addrs[@]}"; do
        case "$addr" in
            '*') return 0 ;;
            localhost) [[ $PG_HOST == 127.0.0.1 || $PG_HOST == ::1 || $PG_HOST == localhost ]] && return 0 ;;
            0.0.0.0) [[ $PG_HOST == 127.0.0.1 || $PG_HOST == localhost ]] && return 0 ;;
            ::) [[ $PG_HOST == ::1 ]] && return 0 ;;
            *) [[ $addr == "$PG_HOST" ]] && return 0 ;;
        esac
    done
    return 1
}

# Settings of the reference cluster that are its own and must not be copied to another one.
CLUSTER_OWN_SETTINGS='port|data_directory|hba_file|ident_file|external_pid_file|cluster_name|unix_socket_directories|stats_temp_directory'

# No cluster serves $PG_PORT: create one for it, configured like the existing default cluster
# (the one on 5432, else the first listed) when there is one: its pg_hba.conf (so local
# connections authenticate the same way) and its conf.d settings, minus the cluster's own
# (port, paths, name). Extensions come from the version's packages (postgresql-contrib).
create_cluster() {
    local ver ref ref_ver ref_cl name n=1
    if [[ $PG_HOST != /* ]] && tcp_open "$PG_HOST" "$PG_PORT"; then
        die "something that is not a PostgreSQL cluster of this machine listens on $PG_HOST:$PG_PORT" \
            "(pg_lsclusters lists none on that port) - stop it, or ask for another port"
    fi
    ref="$(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 {print $1, $2; exit}')"
    [[ -n $ref ]] || ref="$(pg_lsclusters -h 2>/dev/null | awk '{print $1, $2; exit}')"
    ver="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
        awk -F/ '{print $5}' | sort -V | tail -n1)"
    [[ -n $ver ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    if [[ -z $ref ]]; then
        name=main # a fresh installation without any cluster: Debian's default name
    else
        name="crm$PG_PORT"
        while [[ -e /etc/postgresql/$ver/$name || -e /var/lib/postgresql/$ver/$name ]]; do
            n=$((n + 1))
            name="crm${PG_PORT}_$n"
        done
    fi
    printf 'deps.sh: no PostgreSQL cluster serves port %s: creating cluster %s/%s for it%s ...\n' \
        "$PG_PORT" "$ver" "$name" "${ref:+ (configured like ${ref/ //})}"
    local log
    log="$(mktemp /tmp/crm-deps-pgcreate.XXXXXX)"
    if ! as_root pg_createcluster -p "$PG_PORT" "$ver" "$name" >"$log" 2>&1; then
        cat "$log" >&2
        die "pg_createcluster -p $PG_PORT $ver $name failed"
    fi
    rm -f "$log"
    if [[ -n $ref ]]; then
        read -r ref_ver ref_cl <<<"$ref"
        local from="/etc/postgresql/$ref_ver/$ref_cl" to="/etc/postgresql/$ver/$name" hba conf
        hba="$(pg_conftool -s "$ref_ver" "$ref_cl" show hba_file 2>/dev/null || true)"
        hba="${hba//\'/}"
        hba="${hba:-$from/pg_hba.conf}"
        if as_root test -f "$hba"; then
            as_root cp "$hba" "$to/pg_hba.conf"
            as_root chown postgres:postgres "$to/pg_hba.conf"
        fi
        if as_root test -d "$from/conf.d" && as_root grep -qE "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf\.d'" "$to/postgresql.conf"; then
            as_root mkdir -p "$to/conf.d"
            while IFS= read -r conf; do
                [[ -n $conf ]] || continue
                # shellcheck disable=SC2016 # $1/$2/$3 expand in the inner shell
                as_root sh -c 'grep -vE "^[[:space:]]*($1)[[:space:]]*=" "$2" > "$3"' sh \
                    "$CLUSTER_OWN_SETTINGS" "$conf" "$to/conf.d/${conf##*/}" || true
                as_root chown postgres:postgres "$to/conf.d/${conf##*/}"
            done < <(as_root find "$from/conf.d" -maxdepth 1 -name '*.conf' -type f)
        fi
    fi
    PG_ACTION="created and started cluster $ver/$name${ref:+ (configured like ${ref/ //})}"
}

start_postgres() {
    local line ver cl st
    line="$(cluster_for_port)"
    if [[ -z $line ]]; then
        create_cluster
        line="$(cluster_for_port)"
        [[ -n $line ]] || die "pg_createcluster did not create a cluster on port $PG_PORT"
    fi
    read -r ver cl st <<<"$line"
    PG_CLUSTER="$ver/$cl"
    PG_ACTION="${PG_ACTION:-started cluster $PG_CLUSTER}"

    local listen
    if listen="$(pg_conftool "$ver" "$cl" show listen_addresses 2>/dev/null)"; then
        listen="${listen#*= }"
    else
        listen=localhost # not set: PostgreSQL's default
    fi
    if ! listen_covers_host "$listen"; then
        local new="${listen//\'/}"
        new="${new:+$new,}$PG_HOST"
        # (pg_conftool set would write 127.0.0.1 unquoted, which PostgreSQL rejects.)
        local confdir="/etc/postgresql/$ver/$cl" conf
        if as_root grep -qE "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf\.d'" "$confdir/postgresql.conf"; then
            conf="$confdir/conf.d/99-crm-deps.conf"
            as_root mkdir -p "$confdir/conf.d"
            printf "# written by crm scripts/deps.sh\nlisten_addresses = '%s'\n" "$new" | as_root tee "$conf" >/dev/null
        else
            conf="$confdir/postgresql.conf"
            printf "listen_addresses = '%s'  # added by crm scripts/deps.sh\n" "$new" | as_root tee -a "$conf" >/dev/null
        fi
        printf "deps.sh: set listen_addresses = '%s' for cluster %s in %s\n" "$new" "$PG_CLUSTER" "$conf"
        if [[ $st == online* ]]; then
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$cl" restart ||
                die "could not restart PostgreSQL cluster $PG_CLUSTER"
            PG_ACTION="restarted cluster $PG_CLUSTER to listen on $PG_HOST"
            return 0
        fi
    fi
    if [[ $st != online* ]]; then
        # On failure pg_ctlcluster prints the server log's last lines itself.
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$cl" start ||
            die "could not start PostgreSQL cluster $PG_CLUSTER"
    fi
}

psql_admin() {
    PGCONNECT_TIMEOUT=5 psql -X -w -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

# Makes sure "$PG_USER" can connect over local TCP without a password by putting trust lines
# for it at the top of pg_hba.conf (first match wins) and reloading. Only done when connecting
# fails with an authentication error; a working setup is never touched.
ensure_pg_auth() {
    local err
    if err="$(psql_admin -d postgres -Atc 'select 1' 2>&1 >/dev/null)"; then
        return 0
    fi
    if ! is_local_host "$PG_HOST" || [[ -n ${PGPASSWORD:-} ]] ||
        ! grep -qiE 'authentication|password|pg_hba.conf' <<<"$err"; then
        die "cannot connect to PostgreSQL at $PG_HOST:$PG_PORT as $PG_USER:" "$err"
    fi
    local line ver cl hba
    line="$(cluster_for_port)"
    [[ -n $line ]] || die "cannot connect as $PG_USER and no local cluster serves port $PG_PORT:" "$err"
    read -r ver cl _ <<<"$line"
    hba="$(pg_conftool -s "$ver" "$cl" show hba_file 2>/dev/null || true)"
    hba="${hba//\'/}"
    hba="${hba:-/etc/postgresql/$ver/$cl/pg_hba.conf}"
    if as_root grep -qF "$HBA_MARKER" "$hba"; then
        die "cannot connect as $PG_USER although $hba already has deps.sh's trust lines:" "$err"
    fi
    printf 'deps.sh: allowing passwordless TCP connections from 127.0.0.1 and ::1 for %s in %s\n' \
        "$PG_USER" "$hba"
    local tmp
    tmp="$(mktemp)"
    {
        printf '%s\n' "$HBA_MARKER"
        printf 'host    all    %s    127.0.0.1/32    trust\n' "$PG_USER"
        printf 'host    all    %s    ::1/128         trust\n' "$PG_USER"
        as_root cat "$hba"
    } >"$tmp"
    as_root cp "$hba" "$hba.crm-deps.bak"
    # shellcheck disable=SC2016 # $1/$2 expand in the inner shell
    as_root sh -c 'cat "$1" > "$2"' sh "$tmp" "$hba"
    rm -f "$tmp"
    as_root pg_ctlcluster "$ver" "$cl" reload
    wait_for 10 psql_admin -d postgres -Atc 'select 1' >/dev/null 2>&1 ||
        die "still cannot connect to PostgreSQL as $PG_USER after updating $hba"
    PG_HOW="${PG_HOW}, pg_hba updated"
}

ensure_databases() {
    local db exists ext
    for db in "${DATABASES[@]}"; do
        exists="$(psql_admin -d postgres -Atc "select 1 from pg_database where datname = '$db'")"
        local how=exists
        if [[ $exists != 1 ]]; then
            # A concurrent run may create it between the check and here: re-check on failure.
            if ! psql_admin -d postgres -c "CREATE DATABASE \"$db\"" 2>/dev/null &&
                [[ "$(psql_admin -d postgres -Atc "select 1 from pg_database where datname = '$db'")" != 1 ]]; then
                psql_admin -d postgres -c "CREATE DATABASE \"$db\"" # show the error
            fi
            how=created
        fi
        if ! psql_admin -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' -c 'CREATE EXTENSION IF NOT EXISTS unaccent' 2>/dev/null; then
            psql_admin -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' -c 'CREATE EXTENSION IF NOT EXISTS unaccent' ||
                die "could not create extensions pg_trgm and unaccent in database $db (is postgresql-contrib installed?)"
        fi
        ext="$(psql_admin -d "$db" -Atc "select extversion from pg_extension where extname = 'pg_trgm'")"
        status database ok "$db on $PG_HOST:$PG_PORT ($how; pg_trgm $ext)"
    done
}

ensure_postgres() {
    PG_HOW="was running"
    if ! pg_ready; then
        is_local_host "$PG_HOST" ||
            die "PostgreSQL at $PG_HOST:$PG_PORT is not reachable (a remote server is not started by this script)"
        start_postgres
        PG_HOW="$PG_ACTION"
        [[ ${INSTALLED:-0} == 1 ]] && PG_HOW="installed, $PG_HOW"
        wait_for "$DEPS_TIMEOUT" pg_ready ||
            die "PostgreSQL at $PG_HOST:$PG_PORT not ready after ${DEPS_TIMEOUT}s"
    fi
    ensure_pg_auth
    local version
    version="$(psql_admin -d postgres -Atc 'show server_version' | awk '{print $1}')"
    status postgres ok "PostgreSQL $version on $PG_HOST:$PG_PORT as $PG_USER ($PG_HOW)"
}

# ---------------------------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------------------------
# Prints the server's INFO line (the first thing a NATS server sends on connect).
nats_info() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        IFS= read -r -t 4 line <&3 || exit 1
        printf "%s\n" "$line"' "$NATS_HOST" "$NATS_PORT" 2>/dev/null
}
nats_up() { tcp_open "$NATS_HOST" "$NATS_PORT"; }

start_nats() {
    [[ -x $NATS_BIN ]] || die "nats-server not found (expected $NATS_BIN)"
    # The standard port uses the standard places; another port gets its own, so that two
    # servers never share a JetStream store.
    NATS_STORE=/var/lib/nats-server NATS_LOG=/var/log/nats-server.log
    if [[ $NATS_PORT != 4222 ]]; then
        NATS_STORE="/var/lib/nats-server-$NATS_PORT" NATS_LOG="/var/log/nats-server-$NATS_PORT.log"
    fi
    as_root mkdir -p "$NATS_STORE"
    as_root start-stop-daemon --start --oknodo --background \
        --pidfile "/run/crm-nats-server-$NATS_PORT.pid" --make-pidfile \
        --exec "$NATS_BIN" -- \
        -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$NATS_STORE" -l "$NATS_LOG"
}

# A Debian nats-server installed on a systemd machine runs /etc/nats-server.conf, which has no
# JetStream. Enable it with a drop-in rather than editing the packaged config.
enable_jetstream_systemd() {
    [[ -d /run/systemd/system ]] && systemctl is-active --quiet nats-server 2>/dev/null || return 1
    local dir=/etc/systemd/system/nats-server.service.d
    printf 'deps.sh: enabling JetStream for the systemd service nats-server (%s/crm-jetstream.conf)\n' "$dir"
    as_root mkdir -p "$dir"
    printf '%s\n' '[Service]' 'StateDirectory=nats-server' 'ExecStart=' \
        "ExecStart=$NATS_BIN -c /etc/nats-server.conf -js -sd /var/lib/nats-server" |
        as_root tee "$dir/crm-jetstream.conf" >/dev/null
    as_root systemctl daemon-reload
    as_root systemctl restart nats-server
}

ensure_nats() {
    local how="was running"
    if ! nats_up; then
        is_local_host "$NATS_HOST" ||
            die "NATS at $NATS_HOST:$NATS_PORT is not reachable (a remote server is not started by this script)"
        start_nats
        how="started"
        [[ ${INSTALLED:-0} == 1 ]] && how="installed, started"
        wait_for "$DEPS_TIMEOUT" nats_up ||
            die "nats-server on $NATS_HOST:$NATS_PORT not reachable after ${DEPS_TIMEOUT}s (log: $NATS_LOG)"
    fi
    local info
    info="$(nats_info || true)"
    [[ $info == INFO* ]] ||
        die "something listens on $NATS_HOST:$NATS_PORT but it does not speak the NATS protocol"
    if [[ $info != *'"jetstream":true'* ]]; then
        if is_local_host "$NATS_HOST" && enable_jetstream_systemd &&
            wait_for "$DEPS_TIMEOUT" nats_up; then
            info="$(nats_info || true)"
            how="$how, JetStream enabled in its systemd unit"
        fi
        [[ $info == *'"jetstream":true'* ]] ||
            die "the NATS server on $NATS_HOST:$NATS_PORT runs without JetStream" \
                "stop it and re-run this script (it starts nats-server with -js), or restart it with:" \
                "nats-server -a $NATS_HOST -p $NATS_PORT -js -sd /var/lib/nats-server"
    fi
    local version
    version="$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")"
    status nats ok "nats-server ${version:-?} on $NATS_HOST:$NATS_PORT, JetStream enabled ($how)"
}

# ---------------------------------------------------------------------------------------------
check_rust
install_missing_packages
check_node
check_rust_links
ensure_postgres
ensure_databases
ensure_nats
