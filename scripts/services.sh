#!/usr/bin/env bash
# Makes sure the services the tests use are up (PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379), starting them
# if they are installed but stopped. Safe to run repeatedly.
set -uo pipefail

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$( (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3) 2>/dev/null)" = "+PONG" ]; }

if pg_up; then
  echo "postgresql: up"
elif command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "postgresql: starting"
  for v in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster --skip-systemctl-redirect "$v" main start || true; done
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up && echo "postgresql: up" || echo "postgresql: could not start (tests that need it will fail)"
else
  echo "postgresql: not installed (tests that need it will fail)"
fi

if redis_up; then
  echo "redis: up"
elif command -v redis-server >/dev/null 2>&1; then
  echo "redis: starting"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up && echo "redis: up" || echo "redis: could not start (tests that need it will fail)"
else
  echo "redis: not installed (tests that need it will fail)"
fi
exit 0
