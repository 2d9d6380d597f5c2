#!/usr/bin/env bash
# Run the benchmark from the repo root; arguments go to bench/run.py (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m bench.run "$@"
