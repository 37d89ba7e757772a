#!/usr/bin/env bash
# Runs every golden case (or those whose id contains $2) through `attn run`
# and checks the output (and the attention maps of cases that have them)
# against the reference within the case's tolerance,
# and that 1 and 3 threads give the same bits (the server varies threads).
set -u
BUILD=${1:-build}
FILTER=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0; fail=0; failed=()
for dir in "$HERE"/cases/*/; do
  id=$(basename "$dir")
  [ -f "$dir/case.json" ] || continue
  case "$id" in *"$FILTER"*) ;; *) continue ;; esac
  w="$WORK/$id"
  # cases with the reference's attention weights (case.json extra_outputs) run with them
  maps=(); grep -q '"extra_outputs"' "$dir/case.json" && maps=(--output-attention)
  if "$BUILD/golden" prep "$dir" "$w" 2>"$w.err" &&
     "$BUILD/attn" run "${maps[@]+"${maps[@]}"}" --model "$w/model" --inputs "$w/inputs.safetensors" --output "$w/out.safetensors" 2>>"$w.err" &&
     "$BUILD/golden" cmp "$dir" "$w/out.safetensors" 2>>"$w.err" &&
     "$BUILD/attn" run "${maps[@]+"${maps[@]}"}" --threads 1 --model "$w/model" --inputs "$w/inputs.safetensors" --output "$w/out1.safetensors" 2>>"$w.err" &&
     "$BUILD/attn" run "${maps[@]+"${maps[@]}"}" --threads 3 --model "$w/model" --inputs "$w/inputs.safetensors" --output "$w/out3.safetensors" 2>>"$w.err" &&
     { cmp -s "$w/out1.safetensors" "$w/out3.safetensors" || { echo "output bits depend on the thread count" >>"$w.err"; false; }; }; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); failed+=("$id: $(tr '\n' ' ' < "$w.err")")
  fi
done
for f in "${failed[@]+"${failed[@]}"}"; do echo "FAIL $f"; done
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
