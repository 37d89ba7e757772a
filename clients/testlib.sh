# clients/testlib.sh — sourced by clients/<x>/test.sh: prepares the golden
# cases, starts an attnd of its own on a free loopback port with a temporary
# model repository and keys, and always stops it (trap on EXIT).
#
#   source clients/testlib.sh
#   attnd_setup BUILD_DIR        # exports ATTND_URL, ATTND_API_KEY, ATTND_ADMIN_KEY,
#                                #   ATTND_GOLDEN, ATTND_BIN, ATTND_BUILD, ATTND_WORK
#
# ATTND_GOLDEN/<case>/ holds case.json, io.safetensors (the reference),
# inputs.safetensors, model/ (config.json, weights.safetensors) and
# out.safetensors: what `attn run` computes, which HTTP results must equal
# bit for bit.  Every case is also a repository model named g_<case id> (the
# prefix keeps a case named after its type, e.g. causal_linear, from shadowing
# the built-in model of that type).

_attnd_pid=""
ATTND_WORK=""

_attnd_cleanup() {
  local status=$?  # the script's; kept whatever happens here (callers use set -e)
  set +e
  if [ -n "$_attnd_pid" ] && kill -0 "$_attnd_pid" 2>/dev/null; then
    kill "$_attnd_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$_attnd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$_attnd_pid" 2>/dev/null && kill -9 "$_attnd_pid" 2>/dev/null
    wait "$_attnd_pid" 2>/dev/null
  fi
  if [ -n "$ATTND_WORK" ] && [ -z "${ATTND_KEEP_WORK:-}" ]; then rm -rf "$ATTND_WORK"; fi
  exit "$status"
}

# A port nothing listens on (the server's own bind is the real check: we retry).
_attnd_free_port() {
  local p
  for _ in $(seq 100); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

_attnd_get() { # URL -> HTTP status (000 when nothing answers)
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

attnd_setup() {
  local build=$1
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  case "$build" in /*) ;; *) build="$root/$build" ;; esac
  export ATTND_BUILD="$build"
  export ATTND_BIN="$build/attnd"
  for b in attnd attn golden; do
    if [ ! -x "$build/$b" ]; then echo "testlib: $build/$b is missing (run make)" >&2; return 1; fi
  done
  command -v curl >/dev/null || { echo "testlib: curl is missing (make test-deps)" >&2; return 1; }

  ATTND_WORK=$(mktemp -d "${TMPDIR:-/tmp}/attnd-client-test.XXXXXX")
  export ATTND_WORK
  trap _attnd_cleanup EXIT
  trap 'exit 130' INT TERM

  export ATTND_GOLDEN="$ATTND_WORK/golden"
  local repo="$ATTND_WORK/models"
  mkdir -p "$ATTND_GOLDEN" "$repo"
  local n=0 dir id g
  for dir in "$root"/tests/golden/cases/*/; do
    id=$(basename "$dir")
    [ -f "$dir/case.json" ] || continue
    g="$ATTND_GOLDEN/$id"
    if ! "$build/golden" prep "$dir" "$g" >/dev/null 2>"$ATTND_WORK/prep.err" ||
       ! "$build/attn" run --model "$g/model" --inputs "$g/inputs.safetensors" \
            --output "$g/out.safetensors" 2>>"$ATTND_WORK/prep.err"; then
      echo "testlib: cannot prepare golden case $id:" >&2; cat "$ATTND_WORK/prep.err" >&2; return 1
    fi
    cp "$dir/case.json" "$dir/io.safetensors" "$g/"
    cp -r "$g/model" "$repo/g_$id"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "testlib: no golden cases found" >&2; return 1; }

  export ATTND_API_KEY="api-$RANDOM$RANDOM"
  export ATTND_ADMIN_KEY="admin-$RANDOM$RANDOM"
  printf '%s\n' "$ATTND_API_KEY" >"$ATTND_WORK/api.keys"
  printf '# admin\n%s\n' "$ATTND_ADMIN_KEY" >"$ATTND_WORK/admin.keys"

  local port attempt code
  for attempt in 1 2 3 4 5; do
    port=$(_attnd_free_port) || { echo "testlib: no free port" >&2; return 1; }
    # the server reads ATTND_* settings from the environment: start it without any
    # shellcheck disable=SC2046
    env $(compgen -e | grep '^ATTND_' | sed 's/^/-u /') \
    "$ATTND_BIN" --host 127.0.0.1 --port "$port" --model-repository "$repo" \
      --api-key-file "$ATTND_WORK/api.keys" --admin-key-file "$ATTND_WORK/admin.keys" \
      ${ATTND_EXTRA_FLAGS:-} >"$ATTND_WORK/attnd.log" 2>&1 &
    _attnd_pid=$!
    for _ in $(seq 200); do
      code=$(_attnd_get "http://127.0.0.1:$port/v2/health/ready")
      [ "$code" = 200 ] && break
      kill -0 "$_attnd_pid" 2>/dev/null || break
      sleep 0.05
    done
    if [ "$code" = 200 ]; then
      export ATTND_URL="http://127.0.0.1:$port"
      export ATTND_PID="$_attnd_pid"
      echo "testlib: attnd (pid $_attnd_pid) ready on $ATTND_URL with $n golden models"
      return 0
    fi
    if kill -0 "$_attnd_pid" 2>/dev/null; then
      echo "testlib: attnd did not become ready in 10 s:" >&2; cat "$ATTND_WORK/attnd.log" >&2; return 1
    fi
    wait "$_attnd_pid" 2>/dev/null
    if ! grep -qi "in use\|bind" "$ATTND_WORK/attnd.log"; then
      echo "testlib: attnd exited:" >&2; cat "$ATTND_WORK/attnd.log" >&2; return 1
    fi
  done
  echo "testlib: could not start attnd on a free port" >&2
  return 1
}
