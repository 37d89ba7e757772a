// bench/ort/full.js — ONNX Runtime's CPU MultiHeadAttention (com.microsoft),
// the peer of libattn's `full`, on the same shapes as bench/cases.py
// (N=1, H=8, E=D=64, L=S; causal: the op's unidirectional attribute, the
// lower-triangular mask).  The one-node model is built in memory
// (onnx-proto); inputs are random.  One JSON line per (L, causal, threads):
//   {"impl": "onnxruntime", "version": ..., "L": L, "causal": 0|1, "threads": T, "times": [ms...],
//    "cpu_times": [ms of CPU time of the whole process per run...]}
//   node bench/ort/full.js [--L 512,1024] [--causal 0,1] [--threads 1,2] [--min-ms 600] [--min-reps 3]
// Install (bench/ort/deps.sh): npm install --ignore-scripts in this folder
// (the package's install script fetches GPU files from elsewhere; the CPU
// library is in the package itself).
"use strict";
const ort = require("onnxruntime-node");
const { onnx } = require("onnx-proto");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const Ls = arg("--L", "512,1024,2048,4096").split(",").map(Number);
const threads = arg("--threads", "1,2").split(",").map(Number);
const minMs = Number(arg("--min-ms", "600"));
const minReps = Number(arg("--min-reps", "3"));
const causals = arg("--causal", "0").split(",").map(Number);
const H = 8, E = 64;

function valueInfo(name, dims) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimParam: d })) } } },
  });
}

function mhaModel(causal) {
  const INT = onnx.AttributeProto.AttributeType.INT;
  const attribute = [onnx.AttributeProto.create({ name: "num_heads", type: INT, i: H })];
  if (causal) attribute.push(onnx.AttributeProto.create({ name: "unidirectional", type: INT, i: 1 }));
  const node = onnx.NodeProto.create({
    opType: "MultiHeadAttention", domain: "com.microsoft", input: ["q", "k", "v"], output: ["o"], attribute,
  });
  const graph = onnx.GraphProto.create({
    name: "full", node: [node],
    input: [valueInfo("q", ["N", "L", "HE"]), valueInfo("k", ["N", "S", "HE"]), valueInfo("v", ["N", "S", "HD"])],
    output: [valueInfo("o", ["N", "L", "HD"])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8, graph,
    opsetImport: [{ domain: "", version: 17 }, { domain: "com.microsoft", version: 1 }],
  });
  return onnx.ModelProto.encode(model).finish();
}

function randn(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

const WARM_MS = 200;

async function main() {
  for (const causal of causals) for (const T of threads) {
    const bytes = mhaModel(causal);
    const sess = await ort.InferenceSession.create(bytes, {
      executionProviders: ["cpu"], intraOpNumThreads: T, interOpNumThreads: 1, graphOptimizationLevel: "all",
    });
    for (const L of Ls) {
      const feeds = {};
      ["q", "k", "v"].forEach((n, i) => { feeds[n] = new ort.Tensor("float32", randn(L * H * E, i + 1), [1, L, H * E]); });
      // warm-up: forwards for at least WARM_MS (clocks, caches, first-touch
      // pages settle), as bench_core full does
      for (const w0 = performance.now(); ; ) { await sess.run(feeds); if (performance.now() - w0 >= WARM_MS) break; }
      const times = [], cpu_times = [];
      const start = performance.now();
      while (times.length < minReps || performance.now() - start < minMs) {
        const c0 = process.cpuUsage(), t0 = performance.now();
        await sess.run(feeds);
        times.push(performance.now() - t0);
        const c = process.cpuUsage(c0); // every thread of the process, µs
        cpu_times.push((c.user + c.system) / 1000);
        if (times.length >= 200) break;
      }
      console.log(JSON.stringify({ impl: "onnxruntime", version: ort.env.versions.common, L, causal, threads: T, times, cpu_times }));
    }
    await sess.release();
  }
}
main().catch((e) => { console.error(e.message); process.exit(1); });
