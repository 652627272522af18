#!/usr/bin/env bash
# Set up (first run) and run the whole test suite: SQLite and a throwaway PostgreSQL 15 cluster,
# the real GStreamer RTSP server, sipp, and headless Chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ -z ${VSGW_TEST_PG_URL:-} ]]; then
  scripts/pg-throwaway.sh status || trap 'scripts/pg-throwaway.sh stop' EXIT  # stop only what we start
  VSGW_TEST_PG_URL=$(scripts/pg-throwaway.sh start)
  export VSGW_TEST_PG_URL
fi
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
