#!/usr/bin/env bash
# Install the Node clients the e2e tests drive into .clients/, pinned, from the npm registry:
# @openai/codex and @anthropic-ai/claude-code (tests/e2e/test_cli_clients.py), and the Vercel
# AI SDK with its openai, anthropic and google providers, zod, and the Node 22 it needs
# (tests/e2e/test_ai_sdk.py). A second run with all at the pinned versions does nothing.
# Called from scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CODEX_VERSION="0.171.0"
CLAUDE_VERSION="2.1.332"
DIR=".clients"
# The AI SDK needs Node ≥ 22; the machine's own may be older, so Node comes as a package.
AI_SDK=("node@22.23.3" "ai@7.0.173" "@ai-sdk/openai@4.0.118" "@ai-sdk/anthropic@4.0.105"
        "@ai-sdk/google@4.0.121" "zod@4.1.12")

installed() {  # the version in .clients/node_modules/<pkg>/package.json, or nothing
  node -p "require('./$DIR/node_modules/$1/package.json').version" 2>/dev/null || true
}

# claude's bin/claude.exe is a placeholder until install.cjs copies the native binary over it;
# `--version` answers only once that has happened.
claude_ready() {
  [ "$(installed @anthropic-ai/claude-code)" = "$CLAUDE_VERSION" ] &&
    "$DIR/node_modules/.bin/claude" --version 2>/dev/null | grep -q "^$CLAUDE_VERSION"
}

if ! command -v npm >/dev/null; then
  echo "install_clients.sh: npm not found; the CLI tests need node and npm" >&2
  exit 1
fi

if [ "$(installed @openai/codex)" != "$CODEX_VERSION" ] || ! claude_ready; then
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name": "switchyard-test-clients", "private": true}' \
    > "$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error --save-exact \
    "@openai/codex@$CODEX_VERSION" "@anthropic-ai/claude-code@$CLAUDE_VERSION"
  # npm 11 skips install scripts not allowed by name, claude-code's postinstall among them.
  (cd "$DIR/node_modules/@anthropic-ai/claude-code" && node install.cjs)
fi

ai_sdk_ready() {  # every AI SDK package at its pinned version
  for spec in "${AI_SDK[@]}"; do
    [ "$(installed "${spec%@*}")" = "${spec##*@}" ] || return 1
  done
}
if ! ai_sdk_ready; then
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || echo '{"name": "switchyard-test-clients", "private": true}' \
    > "$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error --save-exact "${AI_SDK[@]}"
fi

claude_ready || { echo "install_clients.sh: claude did not install" >&2; exit 1; }
ai_sdk_ready || { echo "install_clients.sh: the AI SDK did not install" >&2; exit 1; }
"$DIR/node_modules/.bin/node" --version | grep -q '^v22\.' ||
  { echo "install_clients.sh: Node 22 did not install" >&2; exit 1; }
"$DIR/node_modules/.bin/codex" --version >/dev/null
