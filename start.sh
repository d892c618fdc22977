#!/usr/bin/env bash
# Runs the whole pixpool system on this machine with embedded defaults, installing what is
# missing first (npm packages, including the Node.js 24 runtime the project runs on).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null 2>&1; then
  echo "pixpool needs Node.js and npm to install itself: see https://nodejs.org (any version ≥ 18)." >&2
  exit 1
fi
# Install when node_modules is missing or older than the lock file.
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "Installing pixpool's packages (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error
fi
exec ./node_modules/.bin/node ./bin/pixpool.js up "$@"
