#!/usr/bin/env bash
# Every service's OpenAPI document against the running system: schemathesis
# (from PyPI, pinned) generates requests from each document and sends them
# through the gateway of a plain `shop serve`, and fails on any answer the
# document does not describe or any 5xx:
#
#   bash .ci/openapi-conformance.sh [BINARY]   # default: ${CARGO_TARGET_DIR:-target}/debug/shop
#
# Isolation from a developer's `shop serve`, the tests and the smoke test:
# loopback ports 29080-29086, its own databases conformance_<service>
# (dropped before and after), the broker namespace `conformance.`, Redis
# database $CONFORMANCE_REDIS_DB (default 12, flushed after). A fixed seed
# and a bounded number of examples per operation keep runs repeatable.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/scratch-state.sh
source deploy/scratch-state.sh

say() { echo "conformance: $*"; }
die() {
  echo "conformance: FAILED: $*" >&2
  exit 1
}

binary="${1:-${CARGO_TARGET_DIR:-target}/debug/shop}"
schemathesis_version=4.32.5
seed=20261201
examples="${CONFORMANCE_EXAMPLES:-20}"
pg=$scratch_pg
redis_db="${CONFORMANCE_REDIS_DB:-12}"
namespace=conformance.
services=(auth users products orders notifications reviews)
declare -A port=([gateway]=29080 [auth]=29081 [users]=29082 [products]=29083 [orders]=29084 [notifications]=29085 [reviews]=29086)
base="http://127.0.0.1:${port[gateway]}"

[ -x "$binary" ] || die "no executable binary at $binary (build it, or pass its path)"
for p in "${port[@]}"; do
  if port_open "$p"; then die "port $p is taken; stop what listens there"; fi
done
if ! st --version 2>/dev/null | grep -q "$schemathesis_version"; then
  say "installing schemathesis $schemathesis_version (PyPI)"
  python3 -m pip install -q --disable-pip-version-check "schemathesis==$schemathesis_version" >/dev/null 2>&1 ||
    die "cannot install schemathesis from PyPI"
fi

mail_dir=$(mktemp -d /tmp/shop-conformance-mail.XXXXXX)
log=$(mktemp /tmp/shop-conformance-serve.XXXXXX)
remove_scratch_state() {
  drop_scratch_databases conformance "${services[@]}"
  clean_scratch_broker "$namespace"
}
server=""
cleanup() {
  local status=$?
  set +e
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null
    wait "$server" 2>/dev/null
  fi
  remove_scratch_state
  flush_scratch_redis "$redis_db"
  rm -rf "$mail_dir" "$log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
remove_scratch_state

export SHOP_HOST=127.0.0.1 RUST_LOG=warn NO_COLOR=1
export SHOP_REDIS_URL="redis://127.0.0.1:6379/$redis_db"
export SHOP_BROKER_NAMESPACE="$namespace"
export SHOP_JWKS_URL="http://127.0.0.1:${port[auth]}/auth/jwks"
export SHOP_MAIL_DIR="$mail_dir" SHOP_AUTH_BCRYPT_COST=4 SHOP_SHUTDOWN_DRAIN_SECS=0
export SHOP_GATEWAY_OPS_PORT=0
# Rate limits would answer generated requests with 429s and hide the rest.
export SHOP_RATE_LIMIT_READS=0 SHOP_RATE_LIMIT_WRITES=0 SHOP_RATE_LIMIT_AUTH=0 SHOP_RATE_LIMIT_REGISTRATIONS=0
for service in gateway "${services[@]}"; do
  upper=${service^^}
  export "SHOP_${upper}_PORT=${port[$service]}" "SHOP_${upper}_URL=http://127.0.0.1:${port[$service]}"
done
for service in "${services[@]}"; do
  export "SHOP_${service^^}_DATABASE_URL=$pg/conformance_$service"
done

"$binary" migrate >/dev/null
admin_password="conformance-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$binary" admin create --username conformance-admin --email conformance-admin@example.com \
  --password "$admin_password" >/dev/null
"$binary" serve >"$log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  curl -sf "$base/healthz" >/dev/null && break
  sleep 0.2
done
for service in "${services[@]}"; do
  curl -sf "http://127.0.0.1:${port[$service]}/readyz" >/dev/null ||
    { tail -n 40 "$log" >&2; die "$service is not ready"; }
done
# A logout revokes the token it is sent with, a logout-all every token of
# its user: run before the rest, they turned the admin's token into 401s for
# every later operation (schemathesis warned that they returned only 401).
# So every run has a token of its own, and these two run last, apart. The
# tokens are all taken now: after the auth run's failed logins, this client
# address is refused logins for a while.
revoking=(/auth/logout /auth/logout-all)
runs=("${services[@]}")
for path in "${revoking[@]}"; do runs+=("auth-${path##*/}"); done
declare -A token
for name in "${runs[@]}"; do
  token[$name]=$(curl -sf "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"conformance-admin\",\"password\":\"$admin_password\"}" | jq -r .access_token)
  [ -n "${token[$name]}" ] && [ "${token[$name]}" != null ] || die "the admin cannot log in"
done

failed=()
# check NAME SERVICE [FILTER...]: schemathesis on SERVICE's document (the
# operations FILTER selects), logged to /tmp/shop-conformance-NAME.log.
check() {
  local name=$1 service=$2 log="/tmp/shop-conformance-$1.log"
  shift 2
  say "$name: $examples examples per operation, seed $seed"
  if ! st run "http://127.0.0.1:${port[$service]}/openapi.json" --url "$base" "$@" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,negative_data_rejection \
    -H "Authorization: Bearer ${token[$name]}" --max-examples "$examples" --seed "$seed" \
    --no-color >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    failed+=("$name")
  fi
  grep -E "generated|Selected" "$log" | sed 's/^ */  /' || true
}
exclude=()
for path in "${revoking[@]}"; do exclude+=(--exclude-path "$path"); done
for service in "${services[@]}"; do
  if [ "$service" = auth ]; then
    check auth auth "${exclude[@]}"
  else
    check "$service" "$service"
  fi
done
for path in "${revoking[@]}"; do
  check "auth-${path##*/}" auth --include-path "$path"
done
[ ${#failed[@]} -eq 0 ] || die "findings in ${failed[*]} (logs: /tmp/shop-conformance-<name>.log)"
say "passed"
