# Sourced by proto/*.sh: sets NODE (node 20 or newer) and installs the
# validators pinned by proto/package-lock.json into proto/node_modules with
# `npm ci` when they are missing or the lock file changed.
_proto=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE=${ATTND_NODE:-$(command -v node || command -v nodejs || true)}
if [ -z "$NODE" ]; then echo "proto: node is missing (make test-deps)" >&2; exit 1; fi
_major=$("$NODE" -p 'process.versions.node.split(".")[0]')
if [ "$_major" -lt 20 ]; then
  echo "proto: node $("$NODE" --version) is older than 20 (@readme/openapi-parser needs 20)" >&2; exit 1
fi
_lock=$(sha256sum "$_proto/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$_proto/node_modules/.proto-lock" 2>/dev/null)" != "$_lock" ]; then
  command -v npm >/dev/null || { echo "proto: npm is missing (make test-deps)" >&2; exit 1; }
  echo "proto: npm ci (the validators pinned by proto/package-lock.json)" >&2
  (cd "$_proto" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$_lock" >"$_proto/node_modules/.proto-lock"
fi
export NODE
