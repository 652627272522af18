#!/usr/bin/env bash
# Set up (first run) and start the demo gateway: synthetic cameras + a GB/T 28181 simulator,
# SQLite and the in-process bus. It prints the URLs to open.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/vsgw demo "$@"
