#!/usr/bin/env bash
# Static checks: ruff over the repository, mypy over the `switchyard` package (strict on
# services/common and the codecs, see pyproject.toml). Fails on the first finding.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m ruff check --quiet .
# mypy names modules by folder: show it `services/` under its import name, `switchyard`.
view=$(mktemp -d)
trap 'rm -rf "$view"' EXIT
ln -s "$PWD/services" "$view/switchyard"
MYPYPATH="$view" python3 -m mypy --no-error-summary -p switchyard
