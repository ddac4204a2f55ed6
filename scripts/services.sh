#!/usr/bin/env bash
# PostgreSQL and Redis must answer at their default ports for the test suite (DESIGN.md: tests run the
# production engines too). Start them with the machine's own packages if they are down; fail loudly
# if that does not work. Never skip.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "services: PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "services: Redis is not answering on 127.0.0.1:6379; starting it" >&2
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi

status=0
pg_up || { echo "services: PostgreSQL is required at 127.0.0.1:5432 and could not be started (apt-get install postgresql)" >&2; status=1; }
redis_up || { echo "services: Redis is required at 127.0.0.1:6379 and could not be started (apt-get install redis-server)" >&2; status=1; }
[ $status -eq 0 ] && echo "services: PostgreSQL and Redis are up" >&2
exit $status
