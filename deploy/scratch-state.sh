# shellcheck shell=bash
# Sourced, not run: the scratch state a throwaway run of the system keeps on
# the machine's shared PostgreSQL, RabbitMQ and Redis (deploy/smoke.sh,
# .ci/openapi-conformance.sh), and its removal. A run names everything it
# makes with its own prefix, so removing it never touches a developer's
# `shop serve`, the tests or the other run:
#
#   port_open PORT                    something listens on 127.0.0.1:PORT
#   drop_scratch_databases PREFIX SERVICE...   drops PREFIX_SERVICE for each
#   clean_scratch_broker NAMESPACE    deletes the queues and exchanges named NAMESPACE*
#   flush_scratch_redis DB            empties Redis database DB
#
# Removal is best effort (a server that is down has nothing to remove), so
# it is safe before a run, after it and from an EXIT trap.

scratch_pg="${SCRATCH_PG_URL:-postgres://postgres@127.0.0.1:5432}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

drop_scratch_databases() {
  local prefix=$1 service
  shift
  for service in "$@"; do
    psql "$scratch_pg/postgres" -qAtc "DROP DATABASE IF EXISTS ${prefix}_$service WITH (FORCE)" >/dev/null 2>&1 || true
  done
}

clean_scratch_broker() {
  command -v rabbitmqctl >/dev/null || return 0
  local namespace=$1 name
  local pattern="^${namespace//./\\.}"
  { rabbitmqctl -q list_queues name 2>/dev/null | grep "$pattern" || true; } |
    while read -r name; do rabbitmqctl -q delete_queue "$name" </dev/null >/dev/null 2>&1 || true; done
  # rabbitmqctl has no delete_exchange; the broker's own function does it.
  { rabbitmqctl -q list_exchanges name 2>/dev/null | grep "$pattern" || true; } |
    while read -r name; do
      rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$name\">>), false, <<\"${namespace%.}\">>)." \
        </dev/null >/dev/null 2>&1 || true
    done
}

flush_scratch_redis() {
  redis-cli -n "$1" flushdb >/dev/null 2>&1 || true
}
