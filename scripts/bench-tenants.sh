#!/usr/bin/env bash
# Many tenants on one PostgreSQL (issue 14, item 3): creates N tenants with every service's
# tables, then measures
#   - how fast tenants are created (the migration runner's fleet path, `crm migrate`)
#   - catalog size (pg_class rows, pg_catalog's size, the database size) before and after
#   - GET /api/v1/contacts/{id} on `crm serve` (release): one hot tenant vs requests spread over
#     random tenants among all N (wrk, each request with its tenant's token)
#   - PostgreSQL backend memory of the service pool's backends: after the hot run, then after a
#     pass that walks through every tenant in turn (VmRSS and RssAnon from /proc, per backend)
#   - signup p50/p95 through tenant-service with spare schemas (POST /api/v1/tenants)
#   - one added column across all N schemas through the runner (example fleet_add_column)
#   - pg_dump of one tenant schema (time, size)
#
# Usage: scripts/bench-tenants.sh [N]                         (default N=10000)
# Environment: DATABASE_URL (only its server is used: the database crm_scale, or BENCH_DB, is
#   dropped and created), SECS (seconds per wrk run, default 15), CONNECTIONS (default 32),
#   SIGNUPS (default 20), BENCH_PORT_OFFSET (default 300), SKIP_BUILD=1 (reuse target/release),
#   REUSE=1 (keep the database and tokens of the previous run: only the GET runs and the
#   backends' memory, e.g. to compare two builds), CRM_BIN (default target/release/crm), FLEET_BIN (default target/release/examples/fleet_add_column).
# Needs wrk, psql, pg_dump and python3. Tenants are created as registry rows plus empty schemas
# that `crm migrate` then brings up to date (the same sets and code as a signup's schema,
# eight schemas at a time); each gets one active admin user and one contact owned by it
# (seeded with SQL: a bcrypt login per tenant would dominate the run), and a token minted with
# JWT_SECRET, as auth-service would sign it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

n=${1:-10000}
secs=${SECS:-15}
conns=${CONNECTIONS:-32}
signups=${SIGNUPS:-20}
offset=${BENCH_PORT_OFFSET:-300}
base_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/crm_test}
base_url=${base_url%%\?*}
db=${BENCH_DB:-crm_scale}
db_url="${base_url%/*}/$db"
export DATABASE_URL=$db_url
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export JWT_SECRET=${JWT_SECRET:-crm-bench-jwt-secret-not-for-production-0123456789}
export PLATFORM_ADMIN_TOKEN=${PLATFORM_ADMIN_TOKEN:-crm-bench-platform-admin-token}
export LOG_LEVEL=${LOG_LEVEL:-warn}
export AUTH_SERVICE_URL=http://127.0.0.1:$((8080 + offset)) TENANT_SERVICE_URL=http://127.0.0.1:$((8081 + offset))
export CONTACT_SERVICE_URL=http://127.0.0.1:$((8082 + offset)) DEAL_SERVICE_URL=http://127.0.0.1:$((8083 + offset))
export COMMUNICATION_SERVICE_URL=http://127.0.0.1:$((8084 + offset))
work=.data/bench/tenants
bin=${CRM_BIN:-target/release/crm}
mkdir -p "$work"
psql_db() { psql "$db_url" -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

if [[ ${SKIP_BUILD:-0} != 1 && ${REUSE:-0} != 1 ]]; then
    cargo build --quiet --release --bin crm
    cargo build --quiet --release -p crm-database --example fleet_add_column
fi

catalog() {
    psql_db -F ' ' -c "SELECT (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_attribute),
        pg_size_pretty((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                        WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r')),
        pg_size_pretty(pg_database_size(current_database()))" |
        awk '{printf "pg_class %s rows, pg_attribute %s rows, pg_catalog %s %s, database %s %s\n", $1, $2, $3, $4, $5, $6}'
}

echo "== bench-tenants: N=$n, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), database $db, $bin"
schema=$(psql_db -c "SELECT schema_name FROM platform.tenants ORDER BY subdomain LIMIT 1" 2>/dev/null || true)
if [[ ${REUSE:-0} != 1 ]]; then
psql "${base_url%/*}/postgres" -qAtX -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
psql_db -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" -c "CREATE EXTENSION IF NOT EXISTS unaccent"
"$bin" migrate >/dev/null 2>&1
echo "catalog, platform only:   $(catalog)"

# 1. Tenants: registry rows and empty schemas (one transaction), then the runner.
python3 - "$n" "$work" <<'PY'
import sys, secrets, time, json, hmac, hashlib, base64, os
n, work = int(sys.argv[1]), sys.argv[2]
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
def ulid():
    t = int(time.time() * 1000)
    head = "".join(alphabet[(t >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(secrets.choice(alphabet) for _ in range(16))
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
secret = os.environ["JWT_SECRET"].encode()
issuer = os.environ.get("JWT_ISSUER", "crm")
now = int(time.time())
ids = [ulid() for _ in range(n)]
with open(f"{work}/tenants.sql", "w") as f:
    f.write("BEGIN;\n")
    for i, tid in enumerate(ids):
        s = "tenant_" + tid.lower()
        f.write(f"INSERT INTO platform.tenants (id, name, subdomain, schema_name) VALUES ('{tid}', 'Bench {i}', 'bench{i}', '{s}');\n")
        f.write(f"CREATE SCHEMA {s};\n")
    f.write("COMMIT;\n")
with open(f"{work}/seed.sql", "w") as f:
    for i, tid in enumerate(ids):
        s = "tenant_" + tid.lower()
        f.write(f"BEGIN; SET LOCAL search_path = {s}, public;\n"
                f"INSERT INTO users (email, password_hash, first_name, last_name, role, status) VALUES ('admin@bench{i}.test', '!', 'Admin', 'Bench{i}', 'admin', 'active');\n"
                f"INSERT INTO contacts (first_name, last_name, owner_id, created_by) VALUES ('Scale', 'Contact{i}', 1, 1);\n"
                "COMMIT;\n")
with open(f"{work}/tokens.txt", "w") as f:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    for i, tid in enumerate(ids):
        claims = {"sub": "1", "tenant_id": tid, "email": f"admin@bench{i}.test", "role": "admin",
                  "iat": now, "exp": now + 6 * 3600, "iss": issuer, "jti": ulid(), "typ": "access"}
        body = header + "." + b64(json.dumps(claims).encode())
        sig = b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
        f.write(f"{body}.{sig} 1\n")
PY
t=$(now)
psql_db -f "$work/tenants.sql" >/dev/null
registry_s=$(since "$t")
t=$(now)
"$bin" migrate --concurrency 8 2>/dev/null | tail -n 1
migrate_s=$(since "$t")
printf 'created %s tenants: registry rows + empty schemas %.1f s, runner (every set, concurrency 8) %.1f s = %.1f ms per tenant, %.1f tenants/s\n' \
    "$n" "$registry_s" "$migrate_s" "$(echo "$migrate_s * 1000 / $n" | bc -l)" "$(echo "$n / $migrate_s" | bc -l)"
t=$(now)
psql_db -f "$work/seed.sql" >/dev/null
printf 'seeded one user and one contact per tenant: %.1f s\n' "$(since "$t")"
psql_db -c "VACUUM ANALYZE" 2>/dev/null || true
echo "catalog, $n tenants:   $(catalog)"
schema=$(psql_db -c "SELECT schema_name FROM platform.tenants ORDER BY subdomain LIMIT 1")
psql_db -F ' ' -c "SELECT c.relkind, count(*) FROM pg_class c WHERE c.relnamespace = '$schema'::regnamespace
    OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = '$schema'::regnamespace)
    OR c.oid IN (SELECT i.indexrelid FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                 WHERE t.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = '$schema'::regnamespace))
    GROUP BY 1 ORDER BY 1" | tr '\n' ' ' | sed 's/^/relations of one tenant schema by relkind (r table, i index, S sequence, t toast): /'
echo

fi

# 2. The platform, release build, on its own ports; no rate limit (one token per tenant, a
#    few hot ones would be refused). The pool of crm serve is shared by the five services.
log=$work/crm.log
CRM_PORT_OFFSET=$offset RATE_LIMIT_USER_PER_MINUTE=0 RATE_LIMIT_TENANT_PER_MINUTE=0 TENANT_SPARE_SCHEMAS=2 \
    "$bin" serve >"$log" 2>&1 &
crm_pid=$!
trap 'kill "$crm_pid" 2>/dev/null; wait "$crm_pid" 2>/dev/null || true' EXIT
api="http://127.0.0.1:$((8000 + offset))/api/v1"
first=$(head -n 1 "$work/tokens.txt")
for _ in $(seq 1 600); do
    code=$(curl -s -o "$work/one.json" -w '%{http_code}' "$api/contacts/1" -H "Authorization: Bearer ${first%% *}" || true)
    [[ $code == 200 ]] && break
    kill -0 "$crm_pid" 2>/dev/null || { tail -n 30 "$log"; exit 1; }
    sleep 0.2
done
[[ $code == 200 ]] || { echo "GET /contacts/1 of the first tenant answered $code: $(cat "$work/one.json")"; exit 1; }

backends() {
    # The pool's backends: application_name "crm" (crm_database's default), this database.
    local pids
    pids=$(psql_db -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'crm'")
    python3 - $pids <<'PY'
import sys
rss, anon = [], []
for pid in sys.argv[1:]:
    try:
        status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
    except OSError:
        continue
    rss.append(int(status["VmRSS"].split()[0]) / 1024)
    anon.append(int(status.get("RssAnon", "0 kB").split()[0]) / 1024)
if rss:
    print(f"{len(rss)} backends: VmRSS max {max(rss):.0f} MB, avg {sum(rss)/len(rss):.0f} MB; "
          f"RssAnon (private: catalog caches, plans) max {max(anon):.1f} MB, avg {sum(anon)/len(anon):.1f} MB, total {sum(anon):.0f} MB")
else:
    print("no backends found")
PY
}

run_wrk() { # MODE (hot|random|cycle) SECS
    MODE=$1 TOKENS="$work/tokens.txt" wrk -t2 -c"$conns" -d"${2}s" --timeout 10s -s scripts/bench/tenants.lua \
        "http://127.0.0.1:$((8000 + offset))" | grep RESULT
}
echo "GET /contacts/{id}, wrk 2 threads, $conns connections, ${secs} s each (a warm-up run first):"
run_wrk hot 3 >/dev/null
printf '  one hot tenant:            %s\n' "$(run_wrk hot "$secs")"
printf '  backends after hot:        %s\n' "$(backends)"
printf '  random tenant among %s: %s\n' "$n" "$(run_wrk random "$secs")"
printf '  again (warm):              %s\n' "$(run_wrk random "$secs")"
printf '  backends after random:     %s\n' "$(backends)"
cycle_secs=$((secs * 2))
printf '  every tenant in turn (%ss): %s\n' "$cycle_secs" "$(run_wrk cycle "$cycle_secs")"
printf '  backends after the cycle:  %s\n' "$(backends)"

[[ ${REUSE:-0} == 1 ]] && exit 0

# 3. Signups through tenant-service, each taking a spare schema: wait until the pool of
#    spares is refilled before the next one (as when signups arrive a few seconds apart).
times=()
for i in $(seq 1 "$signups"); do
    for _ in $(seq 1 200); do
        (($(psql_db -c "SELECT count(*) FROM platform.spare_schemas") >= 2)) && break
        sleep 0.05
    done
    times+=("$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST "http://127.0.0.1:$((8081 + offset))/api/v1/tenants" \
        -H "Authorization: Bearer $PLATFORM_ADMIN_TOKEN" -H 'content-type: application/json' \
        -d "{\"name\": \"Signup $i\", \"subdomain\": \"signup$i-$RANDOM\", \"admin_email\": \"admin@signup$i.test\"}")")
done
printf '%s\n' "${times[@]}" | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
ok = sorted(float(t) * 1000 for c, t in rows if c in ("200", "201"))
bad = [c for c, t in rows if c not in ("200", "201")]
p = lambda q: ok[min(len(ok) - 1, round((len(ok) - 1) * q))] if ok else float("nan")
print(f"signup with spares ({len(rows)} sequential, curl time_total): p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, max {max(ok) if ok else 0:.1f} ms, failed {len(bad)} {bad[:3]}")'
kill "$crm_pid" 2>/dev/null; wait "$crm_pid" 2>/dev/null || true
trap - EXIT

# 4. One added column across every schema (the runner, concurrency 8).
BENCH_DATABASE_URL=$db_url "${FLEET_BIN:-target/release/examples/fleet_add_column}" 8

# 5. pg_dump of one tenant schema (it still reads the whole catalog to find that schema's objects).
t=$(now)
pg_dump "$db_url" -n "$schema" -f "$work/one-tenant.sql"
printf 'pg_dump -n %s: %.1f s, %s bytes (plain SQL)\n' "$schema" "$(since "$t")" "$(stat -c %s "$work/one-tenant.sql")"
echo "catalog at the end:   $(catalog)"
