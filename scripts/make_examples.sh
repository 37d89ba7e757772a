#!/usr/bin/env bash
# Rebuilds examples/models/ (an attnd model repository) and examples/requests/
# (one ready-to-send inference request per model) from the golden cases, so
# the example models carry real reference weights:
#   bash scripts/make_examples.sh [BUILD_DIR]
# Needs build/golden (make all) and /usr/bin/python3 with numpy.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CASES="$ROOT/tests/golden/cases"
# One or two cases per mechanism type; the large axial_image_transformer
# weights are left out to keep the repository small.
PICK="full_causal full_key_lengths linear_key_lengths causal_linear local_ctx5 exact_topk3
      conditional_full_above aft_full aft_simple_causal attention_layer_full attention_layer_linear
      area_mean_sum_1d area_max_mean_2d multi_head_area_2d axial_image_sum axial_positional_embedding
      compositional_mask linear_self_causal_b1_elu linear_self_noncausal_mask_one_kv linear_image_default"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$ROOT/examples/models" "$ROOT/examples/requests"
mkdir -p "$ROOT/examples/models" "$ROOT/examples/requests"
for id in $PICK; do
  # A folder named like a type would hide that type's built-in model.
  name=$id
  if "$BUILD/attn" schema "$id" >/dev/null 2>&1; then name="${id}_example"; fi
  "$BUILD/golden" prep "$CASES/$id" "$WORK/$id"
  cp -r "$WORK/$id/model" "$ROOT/examples/models/$name"
  /usr/bin/python3 - "$WORK/$id/inputs.safetensors" "$CASES/$id/case.json" \
      > "$ROOT/examples/requests/$name.json" <<'PY'
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
case = json.load(open(sys.argv[2]))
order = list(case["inputs"]) + list(case.get("optional_inputs", {}))
dt = {"F32": (np.float32, "FP32"), "I64": (np.int64, "INT64"), "BOOL": (np.bool_, "BOOL")}
inputs = []
for name in order:
    if name not in hdr:
        continue
    v = hdr[name]
    s, e = v["data_offsets"]
    np_t, wire = dt[v["dtype"]]
    a = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=np_t)
    # shortest decimal that reads back as the same float32
    data = [float(str(x)) for x in a] if np_t is np.float32 else a.tolist()
    inputs.append({"name": name, "shape": v["shape"], "datatype": wire, "data": data})
print(json.dumps({"id": case["id"], "inputs": inputs}))
PY
done
echo "examples: $(ls "$ROOT/examples/models" | wc -l) models, $(du -sh "$ROOT/examples" | cut -f1)"
