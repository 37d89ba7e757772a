#!/usr/bin/env bash
# Runs every golden case (or those whose id contains $2) through `attn run`
# and checks the output against the reference within the case's tolerance.
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
  if "$BUILD/golden" prep "$dir" "$w" 2>"$w.err" &&
     "$BUILD/attn" run --model "$w/model" --inputs "$w/inputs.safetensors" --output "$w/out.safetensors" 2>>"$w.err" &&
     "$BUILD/golden" cmp "$dir" "$w/out.safetensors" 2>>"$w.err"; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); failed+=("$id: $(tr '\n' ' ' < "$w.err")")
  fi
done
for f in "${failed[@]+"${failed[@]}"}"; do echo "FAIL $f"; done
echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
