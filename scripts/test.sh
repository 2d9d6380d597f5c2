#!/usr/bin/env bash
# Install everything the test suite needs, run the static checks, then the whole suite.
# Used by the README and by CI (.ci/run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test,routing]'
./scripts/install_clients.sh  # Codex and Claude Code CLIs for tests/e2e/test_cli_clients.py

# Debian packages the tests use: a real PostgreSQL server for the postgres store, a real
# Redis server for the shared limits and pins, a real Prometheus for the latency source of
# `prefer: fastest`, and docker-compose, which validates docker-compose.yml without a Docker
# engine.
missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  missing+=(postgresql)
fi
command -v redis-server >/dev/null || missing+=(redis-server)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Lint and type checks first: a finding fails the run.
./scripts/check.sh

set +e
python3 -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
