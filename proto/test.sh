#!/usr/bin/env bash
# The wire contract: bash proto/test.sh BUILD_DIR
#
#   - proto/openapi.yaml is valid OpenAPI 3.1 (@readme/openapi-parser) and
#     every schema in it compiles (Ajv, JSON Schema 2020-12, strict);
#   - proto/schemas/ equals what gen_schemas.sh makes from `attn list` and
#     `attn schema`, and the golden cases' and example models' configs
#     validate against it;
#   - every proto/examples/*.json request and response matches openapi.yaml;
#   - a live attnd (our own, on a free loopback port, with a temporary copy of
#     examples/models) answers every exchange of proto/lib/scenario.mjs with
#     the expected status, a documented content type and headers, and a body
#     that validates -- errors included (400 401 404 405 413 415 500 503 504);
#   - and each kind of check fails on a broken document, response, request,
#     example, config or schema file.
# Needs node >= 20 and npm (the validators are pinned by package-lock.json
# and installed into proto/node_modules by `npm ci`), and BUILD_DIR/attnd and
# BUILD_DIR/attn.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-build}" && pwd)
for b in attnd attn; do
  [ -x "$BUILD/$b" ] || { echo "proto: $BUILD/$b is missing (run make)" >&2; exit 1; }
done
source "$HERE/lib/node_env.sh"
export ATTND_BUILD="$BUILD"
echo "== proto: the wire contract, node $("$NODE" --version)"
tap=$(mktemp "${TMPDIR:-/tmp}/attnd-proto-tap.XXXXXX")
trap 'rm -f "$tap"' EXIT
status=0
"$NODE" --test --test-reporter=dot --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$HERE/test/contract.test.mjs" || status=$?
grep -E '^# (tests|pass|fail|cancelled|skipped) ' "$tap" | tr '\n' ' '; echo
exit "$status"
