#!/usr/bin/env bash
# Smoke test of the container image: packages a `shop` binary built on this
# machine into the runtime stage of deploy/Dockerfile, runs every service as
# its own container (as Kubernetes would: read-only root, no capabilities,
# uid 10001) against the machine's PostgreSQL, Redis and RabbitMQ, and walks
# one purchase and a review of it through the gateway.
#
#   bash deploy/smoke.sh [BINARY]      # default: ${CARGO_TARGET_DIR:-target}/debug/shop
#
# Isolation from a developer's `shop serve` and from the tests: host
# networking on loopback ports 28080-28086 (and 28089), its own databases smoke_<service>
# (dropped before and after), the broker namespace `smoke.` (its queues and
# exchanges deleted after), Redis database $SMOKE_REDIS_DB (default 13,
# flushed after). Prints `smoke: passed` last on success; on a failure it
# prints the containers' logs and exits 1. Cleans up either way.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/scratch-state.sh
source deploy/scratch-state.sh

say() { echo "smoke: $*"; }
die() {
  echo "smoke: FAILED: $*" >&2
  exit 1
}

binary="${1:-${CARGO_TARGET_DIR:-target}/debug/shop}"
image=localhost/shop:smoke
prefix=shop-smoke
pg=$scratch_pg
redis_db="${SMOKE_REDIS_DB:-13}"
namespace=smoke.
services=(users auth products orders notifications reviews gateway)
with_database=(users auth products orders notifications reviews)
declare -A port=([gateway]=28080 [auth]=28081 [users]=28082 [products]=28083 [orders]=28084 [notifications]=28085 [reviews]=28086)
base="http://127.0.0.1:${port[gateway]}"

# --- Preconditions ----------------------------------------------------------
[ -x "$binary" ] || die "no executable binary at $binary (build it, or pass its path)"
for dependency in PostgreSQL:5432 Redis:6379 RabbitMQ:5672; do
  port_open "${dependency#*:}" || die "${dependency%:*} is not listening on 127.0.0.1:${dependency#*:} (bash .ci/run starts all three)"
done
for p in "${port[@]}"; do
  if port_open "$p"; then die "port $p is taken; stop what listens there"; fi
done
if ! command -v jq >/dev/null; then
  say "installing jq"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; } >/dev/null
fi
for tool in curl jq psql podman redis-cli; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
help=$("$binary" --help 2>&1) || die "$binary --help failed: $help"
grep -q '^  probe ' <<<"$help" || die "$binary has no \`probe\` command (the image's health checks need it)"
bash deploy/podman-setup.sh >/dev/null

# --- Clean-up, whatever happens -----------------------------------------------
mail_dir=$(mktemp -d /tmp/shop-smoke-mail.XXXXXX)
remove_scratch_state() {
  drop_scratch_databases smoke "${with_database[@]}"
  clean_scratch_broker "$namespace"
}
containers() { podman ps -a --format '{{.Names}}' | grep "^$prefix-" || true; }
cleanup() {
  local status=$?
  set +e
  local names
  names=$(containers)
  if [ -n "$names" ]; then
    # shellcheck disable=SC2086
    podman rm -f -t 10 $names >/dev/null 2>&1
  fi
  remove_scratch_state
  flush_scratch_redis "$redis_db"
  rm -rf "$mail_dir" deploy/.bin/shop
  rmdir deploy/.bin 2>/dev/null
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
  local name
  for name in $(containers); do
    echo "----- podman logs $name (last 60 lines) -----" >&2
    podman logs --tail 60 "$name" >&2 2>&1 || true
  done
}
fail() {
  echo "smoke: FAILED: $*" >&2
  show_logs
  exit 1
}

# --- The image ----------------------------------------------------------------
# Leftovers of an interrupted run first.
leftovers=$(containers)
if [ -n "$leftovers" ]; then
  # shellcheck disable=SC2086
  podman rm -f $leftovers >/dev/null
fi
remove_scratch_state

previous_image=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
mkdir -p deploy/.bin
install -m 0755 "$binary" deploy/.bin/shop
say "building $image from $binary"
# --format docker keeps the HEALTHCHECK (OCI images have none).
podman build --pull=never --format docker -f deploy/Dockerfile \
  --build-arg SHOP_BINARY_FROM=prebuilt --target runtime -t "$image" . >/tmp/shop-smoke-build.log 2>&1 ||
  {
    tail -n 30 /tmp/shop-smoke-build.log >&2
    die "podman build failed (log: /tmp/shop-smoke-build.log)"
  }
# This stage's image from a previous run, and the previous smoke image, are left over.
podman image prune -f --filter label=io.shop.stage=prebuilt >/dev/null 2>&1 || true
if [ -n "$previous_image" ] && [ "$previous_image" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
  podman rmi "$previous_image" >/dev/null 2>&1 || true
fi
healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$image")
grep -q '"shop","probe"' <<<"$healthcheck" || die "the image carries no shop probe HEALTHCHECK: $healthcheck"
size=$(podman image inspect --format '{{.Size}}' "$image")
say "image $image: $(numfmt --to=iec --suffix=B "$size") ($size bytes; the binary alone $(numfmt --to=iec --suffix=B "$(stat -c %s "$binary")"))"

# --- The containers -----------------------------------------------------------
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
admin_password="smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
customer_password="smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
chown 10001:10001 "$mail_dir"

env_args=(
  -e SHOP_HOST=127.0.0.1
  -e SHOP_LOG_FORMAT=text
  -e NO_COLOR=1
  -e RUST_LOG=info
  -e SHOP_REDIS_URL="redis://127.0.0.1:6379/$redis_db"
  -e SHOP_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f
  -e SHOP_BROKER_NAMESPACE="$namespace"
  -e SHOP_INTERNAL_TOKEN="$token"
  -e SHOP_JWKS_URL="http://127.0.0.1:${port[auth]}/auth/jwks"
  -e SHOP_MAIL_DIR=/app/var/mail
  -e SHOP_AUTH_BCRYPT_COST=4
  -e SHOP_SHUTDOWN_DRAIN_SECS=1
  -e SHOP_GATEWAY_OPS_PORT=28089
)
for service in "${services[@]}"; do
  upper=${service^^}
  env_args+=(-e "SHOP_${upper}_PORT=${port[$service]}" -e "SHOP_${upper}_URL=http://127.0.0.1:${port[$service]}")
done
for service in "${with_database[@]}"; do
  env_args+=(-e "SHOP_${service^^}_DATABASE_URL=$pg/smoke_$service")
done
# As the Kubernetes manifests run it: read-only root, nothing but the uid.
run_args=(--network host --pull=never --read-only --cap-drop ALL
  --security-opt no-new-privileges --user 10001:10001)

# one_shot NAME ARGS...: a container that runs a command and is removed; its
# output is shown only when it fails.
one_shot() {
  local name=$1 out
  shift
  if ! out=$(podman run --rm --name "$prefix-$name" --no-healthcheck "${run_args[@]}" "${env_args[@]}" "$image" "$@" 2>&1); then
    echo "$out" | tail -n 40 >&2
    fail "shop $* failed"
  fi
}
say "migrating (shop migrate, a one-shot container)"
one_shot migrate migrate
say "creating the admin (shop admin create, a one-shot container)"
one_shot admin admin create --username smoke-admin --email smoke-admin@example.com --password "$admin_password"

for service in "${services[@]}"; do
  podman run -d --name "$prefix-$service" "${run_args[@]}" "${env_args[@]}" \
    -v "$mail_dir:/app/var/mail:Z" \
    --health-cmd "[\"shop\", \"probe\", \"http://127.0.0.1:${port[$service]}/readyz\"]" \
    --health-interval disable \
    --stop-timeout 15 \
    "$image" serve "$service" >/dev/null || fail "cannot start the $service container"
done
say "started ${services[*]} on ports ${port[gateway]}-${port[reviews]}"

# --- Ready --------------------------------------------------------------------
for service in "${services[@]}"; do
  url="http://127.0.0.1:${port[$service]}/readyz"
  ready=no
  for _ in $(seq 1 120); do
    if [ "$(podman inspect --format '{{.State.Running}}' "$prefix-$service" 2>/dev/null)" != true ]; then
      fail "the $service container stopped"
    fi
    # From inside the gateway container, with the image's own probe.
    if podman exec "$prefix-gateway" shop probe "$url" >/dev/null 2>&1; then
      ready=yes
      break
    fi
    sleep 0.5
  done
  [ "$ready" = yes ] || fail "$service never answered $url with 2xx"
done
say "every service is ready"

# --- The flow through the gateway ---------------------------------------------
body=$(mktemp)
# request METHOD PATH EXPECTED_STATUS [TOKEN] [JSON]: the body lands in $body.
request() {
  local method=$1 path=$2 expected=$3 bearer=${4:-} data=${5:-} status
  local args=(-sS -o "$body" -w '%{http_code}' -X "$method" -H 'accept: application/json')
  [ -n "$bearer" ] && args+=(-H "authorization: Bearer $bearer")
  [ -n "$data" ] && args+=(-H 'content-type: application/json' --data "$data")
  status=$(curl "${args[@]}" "$base$path") || fail "$method $path: no answer"
  if [ "$status" != "$expected" ]; then
    echo "smoke: $method $path answered $status, expected $expected:" >&2
    head -c 2000 "$body" >&2
    echo >&2
    fail "$method $path"
  fi
  say "$method $path -> $status"
}

suffix=$(date +%s)$RANDOM
customer="smoke-customer-$suffix"
request POST /auth/register 201 "" "$(jq -nc --arg u "$customer" --arg p "$customer_password" '{
  username: $u, password: $p, email: ($u + "@example.com"), name: "Smoke Customer",
  address: {line1: "1 Test Street", city: "Berlin", postal_code: "10115", country: "DE"}}')"
customer_id=$(jq -r .user.user_id "$body")
[ -n "$(jq -r '.access_token // empty' "$body")" ] || fail "register gave no access token"

request POST /auth/login 200 "" "$(jq -nc --arg u "$customer" --arg p "$customer_password" '{username: $u, password: $p}')"
customer_token=$(jq -r .access_token "$body")

request POST /auth/login 200 "" "$(jq -nc --arg p "$admin_password" '{username: "smoke-admin", password: $p}')"
admin_token=$(jq -r .access_token "$body")

request GET /auth/me 200 "$admin_token"
[ "$(jq -r .role "$body")" = admin ] || fail "smoke-admin is not an admin: $(cat "$body")"

request POST /products 201 "$admin_token" "$(jq -nc --arg sku "SMOKE-$suffix" '[{
  sku: $sku, name: "Smoke test kettle", description: "Boils water for the smoke test.",
  price_cents: 2599, currency: "EUR", stock: 5, category: "kitchen"}]')"
product_id=$(jq -r '.[0].product_id' "$body")
case "$product_id" in "" | null) fail "no product id in $(cat "$body")" ;; esac

request POST /orders 201 "$customer_token" "$(jq -nc --arg p "$product_id" '[{items: [{product_id: $p, quantity: 1}]}]')"
order_id=$(jq -r '.[0].order_id' "$body")
case "$order_id" in "" | null) fail "no order id in $(cat "$body")" ;; esac

request GET "/orders/$order_id" 200 "$customer_token"
[ "$(jq -r .order_id "$body")" = "$order_id" ] || fail "GET /orders/$order_id answered another order: $(cat "$body")"
[ "$(jq -r .user_id "$body")" = "$customer_id" ] || fail "the order is not the customer's: $(cat "$body")"
[ "$(jq -r .total_cents "$body")" = 2599 ] || fail "the order's total is not 2599: $(cat "$body")"

# The customer reviews the product; anyone reads it back (no token).
request POST "/products/$product_id/reviews" 201 "$customer_token" \
  '{"rating": 4, "title": "Boils fast", "body": "Quiet, and the lid closes well."}'
review_id=$(jq -r .review_id "$body")
case "$review_id" in "" | null) fail "no review id in $(cat "$body")" ;; esac
request GET "/reviews/$review_id" 200
[ "$(jq -r .product_id "$body")" = "$product_id" ] || fail "the review is not of the product: $(cat "$body")"
[ "$(jq -r .user_id "$body")" = "$customer_id" ] || fail "the review is not the customer's: $(cat "$body")"
[ "$(jq -r .author_name "$body")" = "Smoke Customer" ] || fail "the review's author is not named: $(cat "$body")"
request GET "/products/$product_id/reviews" 200
[ "$(jq -r '[.data[].review_id] | join(",")' "$body")" = "$review_id" ] ||
  fail "the product's reviews are not the one review: $(cat "$body")"
request GET "/products/$product_id/reviews/summary" 200
[ "$(jq -r .count "$body")" = 1 ] || fail "the summary does not count one review: $(cat "$body")"
[ "$(jq -r '.histogram["4"]' "$body")" = 1 ] || fail "the summary's histogram has no 4-star review: $(cat "$body")"

# The image's health check, run by Podman the way an engine would.
podman healthcheck run "$prefix-gateway" >/dev/null || fail "podman healthcheck run $prefix-gateway failed"
say "podman healthcheck run $prefix-gateway -> healthy"

# Events went through the broker: the welcome mail lands in the mail dir.
mailed=no
for _ in $(seq 1 60); do
  if grep -rlq "$customer@example.com" "$mail_dir" 2>/dev/null; then
    mailed=yes
    break
  fi
  sleep 0.5
done
[ "$mailed" = yes ] || fail "no mail to $customer@example.com in the notifications container's mail dir within 30 s"
say "notifications wrote the welcome mail ($(find "$mail_dir" -name '*.eml' | wc -l) .eml files)"

# A graceful stop: SIGTERM, drain, exit 0 well before the stop timeout.
started=$(date +%s)
podman stop -t 15 "$prefix-gateway" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$prefix-gateway")
[ "$code" = 0 ] || fail "the gateway exited with $code after SIGTERM"
say "gateway stopped gracefully in $(($(date +%s) - started)) s (exit 0)"

rm -f "$body"
say "passed"
