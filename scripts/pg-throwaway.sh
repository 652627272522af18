#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL 15 cluster on 127.0.0.1:${PGPORT:-55432} for the tests.
# Usage: scripts/pg-throwaway.sh start|stop|status   — prints the SQLAlchemy URL on start.
set -euo pipefail
PGPORT=${PGPORT:-55432}
DIR=${PGDIR:-/tmp/vsgw-pg-$PGPORT}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $BIN/initdb ]] || { echo "PostgreSQL server binaries not found (apt-get install postgresql-15)" >&2; exit 1; }
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      rm -rf "$DIR"; mkdir -p "$DIR"; [[ $(id -u) == 0 ]] && chown postgres "$DIR"
      as_pg "$BIN/initdb" -D "$DIR" -U vsgw --auth=trust -E UTF8 >/dev/null
      as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/log" -w -o "-h 127.0.0.1 -p $PGPORT -k /tmp -c fsync=off -c full_page_writes=off" start >/dev/null
      as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U vsgw vsgw_test
    fi
    echo "postgresql+asyncpg://vsgw@127.0.0.1:$PGPORT/vsgw_test" ;;
  status)
    as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1 ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true ;;
esac
