#!/usr/bin/env bash
# clients/c/test.sh BUILD_DIR — the C client against a live attnd.
#
# Builds libattnc, attnctl and attnc_test if needed, starts BUILD_DIR/attnd on a
# free loopback port with a temporary model repository, then checks attnctl and
# the library against it, comparing with `BUILD_DIR/attn run` bit for bit, and
# the README's example.  A second attnd with API keys checks authentication.
# The servers are always stopped.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
W=$(mktemp -d)
PIDS=()
cleanup() {
  # SIGTERM first (nginx's workers outlive a SIGKILLed master), SIGKILL after 5 s.
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill "${PIDS[@]}" 2>/dev/null
    ( sleep 5; kill -9 "${PIDS[@]}" 2>/dev/null ) &
    local watchdog=$!
    wait "${PIDS[@]}" 2>/dev/null
    kill "$watchdog" 2>/dev/null
  fi
  rm -rf "$W"
}
trap cleanup EXIT

pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok - $1"; }
no() { fail=$((fail+1)); echo "not ok - $1"; [ $# -gt 1 ] && sed 's/^/    /' "$2" | head -20; }
# t NAME CMD...: passes when CMD exits 0
t() { local name=$1; shift; if "$@" >"$W/out" 2>"$W/err"; then ok "$name"; else no "$name" "$W/err"; fi; }
# rc WANT NAME CMD...: passes when CMD exits with status WANT
rc() { local want=$1 name=$2; shift 2; "$@" >"$W/out" 2>"$W/err"; local got=$?
       if [ "$got" = "$want" ]; then ok "$name"; else echo "    exit $got, wanted $want" >>"$W/err"; no "$name" "$W/err"; fi; }

make -s --no-print-directory -C "$TOP/clients/c" BUILD="$B" CC="${CC:-cc}" || { echo "clients/c: build failed"; exit 1; }
for f in attnd attn golden attnctl attnc_test; do
  [ -x "$B/$f" ] || { echo "clients/c: $B/$f is missing (run make first)"; exit 1; }
done
CTL=$B/attnctl

# start_attnd LOG ARGS...: starts attnd on a free port; sets PORT, or returns 1.
start_attnd() {
  local log=$1; shift
  "$B/attnd" --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    if [ -n "$PORT" ] && "$CTL" --url "http://127.0.0.1:$PORT" health >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "attnd did not become ready:"; cat "$log"
  return 1
}

# ---- fixtures: inputs, model folders, and what `attn run` makes of them ----
mkdir -p "$W/repo" "$W/full" "$W/full_t"
"$B/attnc_test" gen "$W" || exit 1
"$B/golden" prep "$TOP/tests/golden/cases/linear_self_noncausal" "$W/g" || exit 1
cp -r "$W/g/model" "$W/repo/ls"
cp "$W/g/inputs.safetensors" "$W/ls_in.safetensors"
echo '{"type": "full", "config": {}}' >"$W/full/config.json"
echo '{"type": "full", "config": {"softmax_temp": 0.25}}' >"$W/full_t/config.json"
"$B/attn" run --model "$W/full" --inputs "$W/full_in.safetensors" --output "$W/full_ref.safetensors" &&
"$B/attn" run --model "$W/full_t" --inputs "$W/full_in.safetensors" --output "$W/full_temp_ref.safetensors" &&
"$B/attn" run --model "$W/full" --inputs "$W/readme_in.safetensors" --output "$W/readme_ref.safetensors" &&
"$B/attn" run --model "$W/repo/ls" --inputs "$W/ls_in.safetensors" --output "$W/ls_ref.safetensors" || exit 1
# sequences: one-shot causal forwards (full with a lower-triangular mask; causal_linear is causal itself)
mkdir -p "$W/cl"
echo '{"type": "causal_linear", "config": {"query_dimensions": 8}}' >"$W/cl/config.json"
"$B/attn" run --model "$W/full" --inputs "$W/seq_mask_in.safetensors" --output "$W/seq_full_ref.safetensors" &&
"$B/attn" run --model "$W/full" --inputs "$W/seq_in.safetensors" --output "$W/seq_full_nomask.safetensors" &&
"$B/attn" run --model "$W/cl" --inputs "$W/seq_in.safetensors" --output "$W/seq_cl_ref.safetensors" &&
"$B/attn" run --model "$W/full" --inputs "$W/cross_in.safetensors" --output "$W/cross_ref.safetensors" || exit 1

start_attnd "$W/attnd.log" --model-repository "$W/repo" || exit 1
export ATTNCTL_URL="http://127.0.0.1:$PORT"

# ---- attnctl ----
t "attnctl health: ready" "$CTL" health
grep -q '^ready: yes$' "$W/out" && ok "health prints 'ready: yes'" || no "health prints 'ready: yes'" "$W/out"
t "attnctl models" "$CTL" models
grep -q $'^ls\tREADY' "$W/out" && grep -q $'^full\tREADY' "$W/out" && ok "models lists ls and the built-in full as READY" ||
  no "models lists ls and the built-in full as READY" "$W/out"
t "attnctl metadata" "$CTL" metadata
grep -q '"binary_tensor_data"' "$W/out" && ok "server metadata names binary_tensor_data" || no "server metadata names binary_tensor_data" "$W/out"
t "attnctl infer full (binary)" "$CTL" infer full "$W/full_in.safetensors" "$W/o_full.safetensors"
t "  ... bit for bit equal to attn run" cmp "$W/o_full.safetensors" "$W/full_ref.safetensors"
t "attnctl infer --json full" "$CTL" infer --json full "$W/full_in.safetensors" "$W/o_full_json.safetensors"
t "  ... bit for bit equal to attn run" cmp "$W/o_full_json.safetensors" "$W/full_ref.safetensors"
t "attnctl infer --compression gzip full" "$CTL" infer --compression gzip full "$W/full_in.safetensors" "$W/o_full_gz.safetensors"
t "  ... bit for bit equal to attn run" cmp "$W/o_full_gz.safetensors" "$W/full_ref.safetensors"
t "attnctl infer --json --compression deflate full" "$CTL" infer --json --compression deflate full "$W/full_in.safetensors" "$W/o_full_df.safetensors"
t "  ... bit for bit equal to attn run" cmp "$W/o_full_df.safetensors" "$W/full_ref.safetensors"
# within_rounding A B TOL: every value of A's output within TOL of B's, and at least one differs
within_rounding() {
  paste <("$B/attnc_test" print "$1" output) <("$B/attnc_test" print "$2" output) |
    awk -v tol="$3" '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++ } END { exit !(n > 0 && m > 0 && m <= tol) }'
}
for dt in FP16 BF16; do
  tol=0.01; [ "$dt" = BF16 ] && tol=0.06
  t "attnctl infer --datatype $dt --output-datatype $dt full" \
    "$CTL" infer --datatype $dt --output-datatype $dt full "$W/full_in.safetensors" "$W/o_full_$dt.safetensors"
  t "  ... within $dt's rounding of attn run (and not equal to it)" within_rounding "$W/o_full_$dt.safetensors" "$W/full_ref.safetensors" $tol
done
rc 2 "attnctl infer --datatype FP8: exit 2" "$CTL" infer --datatype FP8 full "$W/full_in.safetensors" "$W/o_x.safetensors"
t "attnctl infer --parameters '{\"softmax_temp\": 0.25}' full" \
  "$CTL" infer --parameters '{"softmax_temp": 0.25}' full "$W/full_in.safetensors" "$W/o_full_t.safetensors"
t "  ... bit for bit equal to attn run with that config" cmp "$W/o_full_t.safetensors" "$W/full_temp_ref.safetensors"
if cmp -s "$W/o_full_t.safetensors" "$W/full_ref.safetensors"; then no "  ... and differs from the default config"; else ok "  ... and differs from the default config"; fi
t "attnctl infer ls (weights from the repository)" "$CTL" infer ls "$W/ls_in.safetensors" "$W/o_ls.safetensors"
t "  ... bit for bit equal to attn run" cmp "$W/o_ls.safetensors" "$W/ls_ref.safetensors"

t "attnctl load ls2 (config.json + base64 weights)" "$CTL" load ls2 "$W/repo/ls"
"$CTL" models | grep -q $'^ls2\tREADY' && ok "models lists ls2 as READY" || no "models lists ls2 as READY"
t "attnctl infer ls2" "$CTL" infer ls2 "$W/ls_in.safetensors" "$W/o_ls2.safetensors"
t "  ... bit for bit equal to attn run" cmp "$W/o_ls2.safetensors" "$W/ls_ref.safetensors"
t "attnctl unload ls2" "$CTL" unload ls2
rc 1 "attnctl infer ls2 after unload: exit 1" "$CTL" infer ls2 "$W/ls_in.safetensors" "$W/o_x.safetensors"
grep -q "ls2" "$W/err" && [ ! -e "$W/o_x.safetensors" ] && ok "  ... with the server's message, nothing written" ||
  no "  ... with the server's message, nothing written" "$W/err"
mkdir -p "$W/broken" && echo '{"type": "linear_self", "config": {"dim": 16, "heads": 2}}' >"$W/broken/config.json"
rc 1 "attnctl load of a model without its weights: exit 1" "$CTL" load broken "$W/broken"
grep -qi "weight" "$W/err" && ok "  ... the server says which weights" || no "  ... the server says which weights" "$W/err"

rc 1 "attnctl infer on an unknown model: exit 1" "$CTL" infer nosuch "$W/full_in.safetensors" "$W/o_x.safetensors"
rc 1 "attnctl infer with the wrong inputs: exit 1 (400)" "$CTL" infer full "$W/ls_in.safetensors" "$W/o_x.safetensors"
rc 2 "attnctl infer from a missing file: exit 2" "$CTL" infer full "$W/nonexistent" "$W/o_x.safetensors"
rc 2 "attnctl infer from a file that is not safetensors: exit 2" "$CTL" infer full "$W/full/config.json" "$W/o_x.safetensors"
rc 2 "attnctl load from a missing folder: exit 2" "$CTL" load x "$W/nonexistent"
rc 2 "attnctl with an unknown command: exit 2" "$CTL" frobnicate
rc 2 "attnctl infer with a missing argument: exit 2" "$CTL" infer full "$W/full_in.safetensors"
rc 1 "attnctl against a closed port: exit 1" "$CTL" --url http://127.0.0.1:1 health

# ---- the library ----
if "$B/attnc_test" api "$ATTNCTL_URL" "$W" >"$W/api.out" 2>&1; then ok "attnc_test api: $(tail -1 "$W/api.out")"
else no "attnc_test api" "$W/api.out"; grep '^not ok' "$W/api.out"; fi

# ---- sequences: the library, then attnctl stream ----
if "$B/attnc_test" seq "$ATTNCTL_URL" "$W" >"$W/seq.out" 2>&1; then ok "attnc_test seq: $(tail -1 "$W/seq.out")"
else no "attnc_test seq" "$W/seq.out"; grep '^not ok' "$W/seq.out"; fi
# close_to A B TOL: the outputs of A and B have the same number of values, all within TOL
close_to() {
  "$B/attnc_test" print "$1" output >"$W/ct_a" && "$B/attnc_test" print "$2" output >"$W/ct_b" &&
  [ "$(wc -l <"$W/ct_a")" -eq "$(wc -l <"$W/ct_b")" ] && [ -s "$W/ct_a" ] &&
  paste "$W/ct_a" "$W/ct_b" | awk -v tol="$3" '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { exit !(m <= tol) }'
}
t "attnctl stream full (one token a request)" "$CTL" stream full "$W/seq_in.safetensors" "$W/o_seq_full.safetensors"
grep -Eq '^sequence [0-9]+: 9 tokens in 9 requests$' "$W/out" && ok "  ... says 9 tokens in 9 requests" || no "  ... says 9 tokens in 9 requests" "$W/out"
t "  ... within 1e-5 of one causal infer (attn run with a lower-triangular mask)" close_to "$W/o_seq_full.safetensors" "$W/seq_full_ref.safetensors" 1e-5
if close_to "$W/o_seq_full.safetensors" "$W/seq_full_nomask.safetensors" 1e-3; then no "  ... and not equal to the unmasked forward"; else ok "  ... and not equal to the unmasked forward"; fi
t "attnctl stream full --chunk 3 --out" "$CTL" stream full "$W/seq_in.safetensors" --chunk 3 --out "$W/o_seq_full3.safetensors"
grep -q ': 9 tokens in 3 requests$' "$W/out" && t "  ... within 1e-5 of one causal infer" close_to "$W/o_seq_full3.safetensors" "$W/seq_full_ref.safetensors" 1e-5 ||
  no "  ... 3 requests" "$W/out"
t "attnctl stream causal_linear --prefill 4 --config query_dimensions" \
  "$CTL" stream --prefill 4 --config '{"query_dimensions": 8}' causal_linear "$W/seq_in.safetensors" "$W/o_seq_cl.safetensors"
grep -q ': 9 tokens in 6 requests$' "$W/out" && ok "  ... a prefill then single tokens: 6 requests" || no "  ... 6 requests" "$W/out"
t "  ... within 1e-5 of attn run of causal_linear" close_to "$W/o_seq_cl.safetensors" "$W/seq_cl_ref.safetensors" 1e-5
t "attnctl stream --cross full (memory on the start, then queries)" "$CTL" stream --cross --id cross.attnctl full "$W/cross_in.safetensors" "$W/o_cross.safetensors"
grep -q '^sequence cross.attnctl: 6 tokens in 6 requests$' "$W/out" && ok "  ... with the given id" || no "  ... with the given id" "$W/out"
t "  ... within 1e-5 of one infer over the memory" close_to "$W/o_cross.safetensors" "$W/cross_ref.safetensors" 1e-5
t "attnctl stream --keep --id kept.1" "$CTL" stream --keep --id kept.1 full "$W/seq_in.safetensors" "$W/o_x.safetensors"
rc 1 "attnctl stream on a live id: exit 1 (409)" "$CTL" stream --id kept.1 full "$W/seq_in.safetensors" "$W/o_y.safetensors"
grep -q "live" "$W/err" && [ ! -e "$W/o_y.safetensors" ] && ok "  ... the server's message, nothing written" || no "  ... the server's message, nothing written" "$W/err"
rc 1 "attnctl stream exact_topk (no sequences): exit 1 (400)" "$CTL" stream exact_topk "$W/seq_in.safetensors" "$W/o_y.safetensors"
grep -q "types that have them" "$W/err" && ok "  ... naming the types that have them" || no "  ... naming the types that have them" "$W/err"
rc 1 "attnctl stream of a file with a mask: exit 1 (400)" "$CTL" stream full "$W/seq_mask_in.safetensors" "$W/o_y.safetensors"
grep -q "cannot be applied to a sequence" "$W/err" && ok "  ... the server says why" || no "  ... the server says why" "$W/err"
rc 2 "attnctl stream --chunk 0: exit 2" "$CTL" stream --chunk 0 full "$W/seq_in.safetensors" "$W/o_y.safetensors"
rc 2 "attnctl stream without an output: exit 2" "$CTL" stream full "$W/seq_in.safetensors"
if start_attnd "$W/attnd-seq.log" --max-sequences 1 --max-sequence-tokens 4 --sequence-evict-after 60; then
  U="http://127.0.0.1:$PORT"
  if "$B/attnc_test" seqlimits "$U" "$W" >"$W/seql.out" 2>&1; then ok "attnc_test seqlimits: $(tail -1 "$W/seql.out")"
  else no "attnc_test seqlimits" "$W/seql.out"; grep '^not ok' "$W/seql.out"; fi
  rc 1 "attnctl stream of 9 tokens with --max-sequence-tokens 4: exit 1 (413)" "$CTL" --url "$U" stream full "$W/seq_in.safetensors" "$W/o_y.safetensors"
  grep -q "max-sequence-tokens" "$W/err" && ok "  ... the server's message" || no "  ... the server's message" "$W/err"
  rc 1 "attnctl stream --chunk 2 of 9 tokens: exit 1 (413 at token 4)" "$CTL" --url "$U" stream --chunk 2 full "$W/seq_in.safetensors" "$W/o_y.safetensors"
  t "  ... and the refused sequences were ended (a new one fits)" "$CTL" --url "$U" stream full "$W/readme_in.safetensors" "$W/o_y.safetensors"
else
  no "start attnd with --max-sequences 1 --max-sequence-tokens 4"
fi

# ---- the README's example, compiled from the README itself ----
awk '/^```c$/ {n++; on = (n == 1); next} /^```$/ {on = 0} on' "$TOP/clients/c/README.md" >"$W/example.c"
if "${CC:-cc}" -std=c11 -Wall -Wextra -Werror -I"$TOP/clients/c" -o "$W/example" "$W/example.c" "$B/libattnc.a" \
     $(pkg-config --libs libcurl jansson zlib) 2>"$W/err"; then
  ok "README example compiles"
  "$B/attnc_test" print "$W/readme_ref.safetensors" output >"$W/readme_want"
  if "$W/example" "$ATTNCTL_URL" >"$W/readme_got" 2>"$W/err" && [ -s "$W/readme_want" ] &&
     cmp -s "$W/readme_got" "$W/readme_want"; then
    ok "README example prints what attn run computes ($(tr '\n' ' ' <"$W/readme_got"))"
  else
    no "README example prints what attn run computes" "$W/err"; diff "$W/readme_got" "$W/readme_want" | head
  fi
else
  no "README example compiles" "$W/err"
fi

# ---- API keys: a second server ----
printf '# comment\napi-secret-1\n' >"$W/api.key"
printf 'admin-secret-1\n' >"$W/admin.key"
if start_attnd "$W/attnd-auth.log" --api-key-file "$W/api.key" --admin-key-file "$W/admin.key"; then
  U="http://127.0.0.1:$PORT"
  t "auth: health needs no key" "$CTL" --url "$U" health
  rc 1 "auth: models without a key: exit 1" "$CTL" --url "$U" models
  grep -Eqi "40[13]|auth|key|token" "$W/err" && ok "  ... the message says why" || no "  ... the message says why" "$W/err"
  t "auth: infer with the API key" "$CTL" --url "$U" --api-key-file "$W/api.key" infer full "$W/full_in.safetensors" "$W/o_auth.safetensors"
  t "  ... bit for bit equal to attn run" cmp "$W/o_auth.safetensors" "$W/full_ref.safetensors"
  rc 1 "auth: load with the API key only: exit 1" "$CTL" --url "$U" --api-key-file "$W/api.key" load ls3 "$W/repo/ls"
  t "auth: load with the admin key" "$CTL" --url "$U" --api-key-file "$W/admin.key" load ls3 "$W/repo/ls"
  printf 'wrong\n' >"$W/wrong.key"
  rc 1 "auth: a wrong key: exit 1" "$CTL" --url "$U" --api-key-file "$W/wrong.key" metadata full
  rc 1 "auth: model metadata without a key: exit 1" "$CTL" --url "$U" metadata full
  rc 0 "auth: the key file from \$ATTNCTL_API_KEY_FILE" env ATTNCTL_API_KEY_FILE="$W/api.key" "$CTL" --url "$U" metadata full
else
  no "auth: start attnd with key files"
fi

echo "clients/c: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
