#!/usr/bin/env bash
# The explorer page (ui/) in a real browser: bash ui/test.sh BUILD_DIR
#
# Starts attnd processes of its own on free loopback ports and drives the
# page in Debian's headless chromium with playwright-core (pinned by
# ui/test/package-lock.json, installed into ui/test/node_modules by `npm ci`;
# it downloads no browser).  See ui/test/explorer.test.mjs for what is
# checked.  Screenshots land in BUILD_DIR/ui-screenshots/.
# Installs chromium (Debian's package) when it is missing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-build}" && pwd)
[ -x "$BUILD/attnd" ] || { echo "ui: $BUILD/attnd is missing (run make)" >&2; exit 1; }
CHROMIUM=${ATTND_CHROMIUM:-$(command -v chromium || true)}
if [ -z "$CHROMIUM" ]; then
  echo "ui: installing Debian's chromium" >&2
  ATTND_DEPS_EXTRA=chromium bash "$HERE/../scripts/deps.sh"
  CHROMIUM=$(command -v chromium)
fi
NODE=${ATTND_NODE:-$(command -v node || command -v nodejs || true)}
[ -n "$NODE" ] || { echo "ui: node is missing (make test-deps)" >&2; exit 1; }
lock=$(sha256sum "$HERE/test/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$HERE/test/node_modules/.ui-lock" 2>/dev/null)" != "$lock" ]; then
  command -v npm >/dev/null || { echo "ui: npm is missing (make test-deps)" >&2; exit 1; }
  echo "ui: npm ci (playwright-core, pinned by ui/test/package-lock.json)" >&2
  (cd "$HERE/test" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$lock" >"$HERE/test/node_modules/.ui-lock"
fi
echo "== ui: the explorer page in $("$CHROMIUM" --version 2>/dev/null || echo chromium), node $("$NODE" --version)"
export ATTND_BUILD="$BUILD" ATTND_CHROMIUM="$CHROMIUM"
cd "$HERE/test"
"$NODE" --test --test-reporter=spec explorer.test.mjs
echo "ui: screenshots in $BUILD/ui-screenshots/"
