#!/usr/bin/env bash
# Run the benchmark from the repo root; arguments go to bench/run.py (see docs/benchmarks.md).
# Without arguments: the whole table (every scenario; direct, Switchyard, LiteLLM, and the
# tracing and client-auth variants), as Markdown, the raw rows in bench/out/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- --tracing --auth --markdown --json bench/out/latest.json
fi
exec python3 -m bench.run "$@"
