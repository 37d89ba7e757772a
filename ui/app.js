// app.js — the explorer page: pick a model from the repository index, build
// its inputs from the model's metadata, run it with the binary tensor
// extension, and draw the attention maps it returns (maps.js).  Everything
// it shows comes from attnd's own endpoints; nothing is fetched elsewhere.
import * as T from "./tensors.js";
import { areaGrid, areaMass, axialGrid, el, fmt, heatmap, legend } from "./maps.js";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("attnd-token") || "", meta: null, config: null, files: {}, result: null,
  sel: { head: "all", query: 0, pos: [0, 0] } };
const HEAD_DIMS = ["H", "heads", "searches"];

// ---- talking to attnd ----
class HttpError extends Error {
  constructor(status, message) {
    super(`HTTP ${status}: ${message}`);
    this.status = status;
  }
}

async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const r = await fetch(path, { method, body, headers });
  if (!r.ok) {
    const text = await r.text();
    let msg = text;
    try {
      msg = JSON.parse(text).error ?? text;
    } catch { /* not JSON: the text as it is */ }
    if (r.status === 401) $("token-form").hidden = false;
    throw new HttpError(r.status, msg || r.statusText);
  }
  return raw ? r : r.json();
}

function showError(e) {
  $("error").textContent = e ? String(e.message || e) : "";
  $("error").hidden = !e;
  document.body.dataset.state = e ? "error" : document.body.dataset.state;
}

// ---- the model list ----
async function loadIndex() {
  showError(null);
  try {
    const info = await api("/v2");
    $("server").textContent = `${info.name} ${info.version} · attention maps up to ${info.limits?.max_attention_elements ?? "?"} elements`;
    state.limits = info.limits || {};
  } catch (e) {
    showError(e);
    return;
  }
  let index;
  try {
    index = await api("/v2/repository/index", { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
  } catch (e) {
    showError(e.status === 401 ? new Error(`${e.message} (the repository index needs the admin token when --admin-key-file is set)`) : e);
    return;
  }
  index.sort((a, b) => a.name.localeCompare(b.name));
  const ul = $("models");
  ul.replaceChildren();
  for (const m of index) {
    const li = el("li", { "data-model": m.name, "data-state": m.state },
      el("button", { type: "button", disabled: m.state !== "READY", title: m.reason || m.state }, m.name),
      el("span", { class: "type" }, m.state === "READY" ? "" : m.state));
    li.querySelector("button").addEventListener("click", () => selectModel(m.name));
    ul.append(li);
  }
  // The types, for the list (one metadata request per model).
  await Promise.all(index.filter((m) => m.state === "READY").map(async (m) => {
    try {
      const meta = await api(`/v2/models/${encodeURIComponent(m.name)}`);
      const li = ul.querySelector(`li[data-model="${CSS.escape(m.name)}"]`);
      li.dataset.type = meta.type;
      li.querySelector(".type").textContent = meta.type + (meta.builtin ? " · built-in" : "");
    } catch { /* shown when chosen */ }
  }));
  document.body.dataset.models = "loaded";
  const want = new URLSearchParams(location.search).get("model");
  if (want) selectModel(want);
}

// ---- a model ----
async function selectModel(name) {
  showError(null);
  try {
    [state.meta, state.config] = await Promise.all([api(`/v2/models/${encodeURIComponent(name)}`),
      api(`/v2/models/${encodeURIComponent(name)}/config`)]);
  } catch (e) {
    showError(e);
    return;
  }
  const m = state.meta;
  for (const li of $("models").children) li.classList.toggle("chosen", li.dataset.model === name);
  $("model").hidden = $("inputs-box").hidden = false;
  $("result").hidden = true;
  $("model-name").textContent = m.name;
  const maps = m.outputs.filter((o) => o.optional);
  const facts = [["type", m.type], ["reference", m.reference], ["source", m.builtin ? "built-in (config from the request's parameters)" : "repository folder"],
    ["weights", (state.config.weights || []).length
      ? state.config.weights.map((w) => `${w.name} ${w.datatype}[${w.shape.join(",")}]`).join(", ")
      : m.builtin ? "none (a parameter-free type)" : "none"],
    ["inputs", m.inputs.map((i) => `${i.name} (${i.dims})${i.optional ? "?" : ""}`).join(", ")],
    ["attention maps", maps.length ? maps.map((o) => `${o.name} (${o.dims})`).join(", ") : "none: this type forms no weights the server returns"]];
  $("model-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-fact": k }, v)]));
  $("model-config").textContent = JSON.stringify(state.config.config, null, 2);
  $("params-box").hidden = !m.builtin;
  $("params").value = "{}";
  $("params-doc").textContent = (m.parameters || []).map((p) => `${p.name} (${p.type}, default ${JSON.stringify(p.default)})`).join(" · ");
  buildInputs();
}

/** The symbols of the free dimensions, with a default size: 1 for a batch
 *  (the first dim of an input of rank 3 or more), 8 for the others. */
function symbols() {
  const syms = new Map();
  for (const inp of state.meta.inputs) {
    inp.dims.split(",").forEach((d, i) => {
      if (inp.shape[i] !== -1) return;
      const dflt = i === 0 && inp.shape.length >= 3 ? 1 : 8;
      syms.set(d, Math.min(syms.get(d) ?? 8, dflt));
    });
  }
  return syms;
}

function buildInputs() {
  const sizes = $("sizes");
  sizes.querySelectorAll(".size").forEach((x) => x.remove());
  for (const [sym, v] of symbols())
    sizes.append(el("label", { class: "size" }, `${sym} `, el("input", { type: "number", min: 1, value: v, "data-sym": sym })));
  const table = $("inputs");
  table.replaceChildren(el("tr", {}, ...["send", "input", "datatype", "dims", "values"].map((h) => el("th", {}, h))));
  state.files = {};
  for (const inp of state.meta.inputs) {
    const send = el("input", { type: "checkbox", checked: !inp.optional, disabled: !inp.optional, "data-send": inp.name });
    const source = el("select", { "data-source": inp.name },
      ...["random", "file", "json"].map((s) => el("option", { value: s }, { random: "random (seeded)", file: "file (.safetensors, .npy)", json: "JSON" }[s])));
    let gen;
    if (inp.datatype === "BOOL") {
      gen = el("select", { "data-pattern": inp.name }, ...[["all", "all true"], ["tril", "lower-triangular (causal)"],
        ["prefix", "first ¾ of the last dim"], ["random", "random"]].map(([v, t]) => el("option", { value: v }, t)));
    } else if (inp.datatype.startsWith("INT")) {
      gen = el("label", {}, "value ", el("input", { type: "number", "data-value": inp.name, value: 0, min: 0 }));
    } else {
      gen = el("span", { class: "hint" }, "normal(0, 1)");
    }
    const file = el("input", { type: "file", accept: ".safetensors,.npy", "data-file": inp.name, hidden: true });
    const json = el("textarea", { rows: 2, "data-json": inp.name, hidden: true, placeholder: "[[...]] or {\"shape\": [...], \"data\": [...]}" });
    const genBox = el("span", {}, gen);
    source.addEventListener("change", () => {
      genBox.hidden = source.value !== "random";
      file.hidden = source.value !== "file";
      json.hidden = source.value !== "json";
    });
    file.addEventListener("change", () => readFile(inp, file));
    const shape = inp.dims.split(",").map((d, i) => (inp.shape[i] === -1 ? d : `${d}=${inp.shape[i]}`)).join(", ");
    table.append(el("tr", { "data-input": inp.name }, el("td", {}, send), el("td", {}, inp.name), el("td", {}, inp.datatype),
      el("td", {}, shape), el("td", {}, source, " ", genBox, file, json)));
  }
  // An integer input (lengths) defaults to ¾ of the largest size, so that its mask shows.
  const biggest = Math.max(...symbols().values());
  table.querySelectorAll("[data-value]").forEach((x) => (x.value = Math.max(1, Math.ceil((biggest * 3) / 4))));
  const wantMaps = state.meta.outputs.some((o) => o.optional);
  $("run").disabled = false;
  $("status").replaceChildren(wantMaps ? el("label", {}, el("input", { type: "checkbox", id: "want-maps", checked: true }), " ask for the attention maps") : "");
}

async function readFile(inp, input) {
  const f = input.files[0];
  delete state.files[inp.name];
  if (!f) return;
  showError(null);
  try {
    const buf = await f.arrayBuffer();
    let t;
    if (f.name.endsWith(".npy")) {
      t = T.readNpy(f.name, buf);
    } else {
      const all = T.readSafetensors(f.name, buf);
      const names = Object.keys(all);
      t = all[inp.name] || (names.length === 1 ? all[names[0]] : null);
      if (!t) throw new Error(`${f.name}: no tensor named ${inp.name} (it has ${names.join(", ") || "none"})`);
    }
    state.files[inp.name] = { ...t, name: inp.name };
  } catch (e) {
    showError(e);
  }
}

function sizeOf(sym) {
  const x = document.querySelector(`[data-sym="${CSS.escape(sym)}"]`);
  const v = Number(x.value);
  if (!Number.isInteger(v) || v < 1) throw new Error(`size ${sym} must be a positive integer`);
  return v;
}

/** The tensor of one input, from its row's choices. */
function makeInput(inp, k) {
  const src = document.querySelector(`[data-source="${CSS.escape(inp.name)}"]`).value;
  if (src === "file") {
    const t = state.files[inp.name];
    if (!t) throw new Error(`${inp.name}: choose a file (or another source)`);
    return t;
  }
  if (src === "json") return T.readJson(inp.name, document.querySelector(`[data-json="${CSS.escape(inp.name)}"]`).value, inp.datatype);
  const shape = inp.dims.split(",").map((d, i) => (inp.shape[i] === -1 ? sizeOf(d) : inp.shape[i]));
  const n = T.numel(shape), seed = Number($("seed").value) >>> 0;
  const g = T.rng(seed * 1000003 + k);
  if (inp.datatype === "BOOL") {
    const p = document.querySelector(`[data-pattern="${CSS.escape(inp.name)}"]`).value;
    const cols = shape[shape.length - 1], rows = shape.length > 1 ? shape[shape.length - 2] : 1;
    return T.makeTensor(inp.name, "BOOL", shape, Uint8Array.from({ length: n }, (_, i) => {
      const c = i % cols, r = Math.floor(i / cols) % rows;
      return p === "all" ? 1 : p === "tril" ? +(c <= r) : p === "prefix" ? +(c < Math.ceil((cols * 3) / 4)) : +(g.uniform() < 0.7);
    }));
  }
  if (inp.datatype.startsWith("INT")) {
    const v = Number(document.querySelector(`[data-value="${CSS.escape(inp.name)}"]`).value);
    return inp.datatype === "INT64" ? T.makeTensor(inp.name, "INT64", shape, new BigInt64Array(n).fill(BigInt(v)))
      : T.makeTensor(inp.name, inp.datatype, shape, new Int32Array(n).fill(v));
  }
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = g.normal();
  return T.makeTensor(inp.name, "FP32", shape, d);
}

// ---- running ----
async function run() {
  showError(null);
  document.body.dataset.state = "running";
  $("run").disabled = true;
  const m = state.meta;
  try {
    const tensors = m.inputs.filter((inp) => document.querySelector(`[data-send="${CSS.escape(inp.name)}"]`).checked)
      .map((inp) => makeInput(inp, m.inputs.indexOf(inp)));
    let parameters = {};
    if (m.builtin) {
      try {
        parameters = JSON.parse($("params").value || "{}");
      } catch (e) {
        throw new Error(`parameters: not JSON: ${e.message}`);
      }
    }
    const maps = $("want-maps")?.checked;
    const outputs = [{ name: "output", parameters: { binary_data: true } }];
    if (maps) outputs.push({ name: "attention", parameters: { binary_data: true } });
    const req = T.encodeRequest(tensors, outputs, parameters);
    const t0 = performance.now();
    const r = await api(`/v2/models/${encodeURIComponent(m.name)}/infer`, { method: "POST", body: req.body, raw: true,
      headers: { "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": String(req.headerLength) } });
    const buf = await r.arrayBuffer();
    const t1 = performance.now();
    const hl = r.headers.get("Inference-Header-Content-Length");
    const res = T.decodeResponse(buf, hl === null ? null : Number(hl));
    state.result = { ...res, tensors: res.tensors, inputs: tensors, parameters, outputs, bytes: buf.byteLength };
    showResult();
    const t2 = performance.now();
    $("latency").textContent = `round trip ${(t1 - t0).toFixed(1)} ms (request ${(req.body.length / 1024).toFixed(1)} KiB, ` +
      `reply ${(buf.byteLength / 1024).toFixed(1)} KiB, binary tensor data) · decoding and drawing ${(t2 - t1).toFixed(1)} ms`;
    snippets();
    document.body.dataset.state = "done";
  } catch (e) {
    showError(e);
    document.body.dataset.state = "error";
  } finally {
    $("run").disabled = false;
  }
}

// ---- the result ----
function showResult() {
  const res = state.result, m = state.meta;
  $("result").hidden = false;
  const tb = $("stats").querySelector("tbody");
  tb.replaceChildren();
  for (const [name, t] of Object.entries(res.tensors)) {
    const s = T.stats(t), spec = m.outputs.find((o) => o.name === name);
    tb.append(el("tr", { "data-output": name }, ...[name, `[${t.shape}]`, spec?.dims ?? "", fmt(s.min), fmt(s.max), fmt(s.mean),
      fmt(s.std), String(s.nonfinite)].map((x) => el("td", {}, x))));
  }
  drawViews();
}

function mapSpecs() {
  const res = state.result;
  return state.meta.outputs.filter((o) => o.optional && res.tensors[o.name] && res.tensors[o.name].shape.length >= 3)
    .map((o) => ({ ...o, t: res.tensors[o.name], dims: o.dims.split(",") }));
}

/** Selectors for every leading dim of the maps (batch, depth, other axes),
 *  the head, the area query and the axial position. */
function controls(specs) {
  const box = $("view-controls");
  box.replaceChildren();
  const sel = state.sel, seen = new Set();
  const pick = (key, label, n, withAll) => {
    if (seen.has(key) || n < 1) return;
    seen.add(key);
    if (sel[key] === undefined || (sel[key] !== "all" && sel[key] >= n)) sel[key] = withAll ? "all" : 0;
    const s = el("select", { "data-select": key }, ...(withAll ? [el("option", { value: "all" }, "all")] : []),
      ...Array.from({ length: n }, (_, i) => el("option", { value: i }, String(i))));
    s.value = String(sel[key]);
    s.addEventListener("change", () => {
      sel[key] = s.value === "all" ? "all" : Number(s.value);
      drawViews();
    });
    box.append(el("label", {}, `${label} `, s));
  };
  const axial = specs.filter((o) => /^attention_axis\d+$/.test(o.name));
  const gridDims = axial.map((o) => o.dims[o.dims.length - 1]);
  for (const o of specs) {
    o.dims.slice(0, -2).forEach((d, i) => {
      if (HEAD_DIMS.includes(d)) pick("head", `head (${d})`, o.t.shape[i], true);
      else if (!gridDims.includes(d)) pick(`dim:${d}`, i === 0 && (d === "N" || d === "B") ? `batch (${d})` : d, o.t.shape[i], false);
    });
  }
  if (state.result.tensors.attention_areas) {
    const o = specs.find((s) => s.name === "attention");
    if (o) pick("query", "area query", o.t.shape[o.t.shape.length - 2], false);
  }
  if (axial.length === 2) {
    ["row", "col"].forEach((w, k) => {
      const n = axial[k].t.shape[axial[k].t.shape.length - 1];
      pick(`pos${k}`, `position ${gridDims[k]} (${w})`, n, false);
    });
  }
}

function strides(shape) {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** The heads shown and a function giving the offset of the (rows x cols)
 *  slice of map o for head h; fixed = {dimName: index} overrides. */
function slicer(o, fixed = {}) {
  const st = strides(o.t.shape), lead = o.dims.slice(0, -2);
  const hi = lead.findIndex((d) => HEAD_DIMS.includes(d));
  const nh = hi < 0 ? 1 : o.t.shape[hi];
  const heads = hi < 0 ? [null] : state.sel.head === "all" ? [...Array(nh).keys()] : [Math.min(state.sel.head, nh - 1)];
  const index = (h, d, i) => (i === hi ? h : d in fixed ? fixed[d] : state.sel[`dim:${d}`] ?? 0);
  const base = (h) => lead.reduce((off, d, i) => off + index(h, d, i) * st[i], 0);
  // "N 0 · head (H) 1": where a slice is, for the readout
  const where = (h) => lead.map((d, i) => (i === hi ? `head (${d}) ${h}` : `${d} ${index(h, d, i)}`)).join(" · ");
  return { heads, base, where, rows: o.t.shape[o.t.shape.length - 2], cols: o.t.shape[o.t.shape.length - 1], headDim: hi < 0 ? null : lead[hi] };
}

const readout = (text) => ($("readout").textContent = text || "\u00a0");
const colName = (d) => (d === "A" ? "area" : d === "retrievals" ? "retrieval" : "key");

function drawViews() {
  const specs = mapSpecs();
  const views = $("views");
  views.replaceChildren();
  $("legend-box").replaceChildren();
  if (!specs.length) {
    views.append(el("p", { class: "hint" }, state.meta.outputs.some((o) => o.optional) ? "No maps were asked for." : "This model returns no attention maps."));
    $("view-controls").replaceChildren();
    return;
  }
  controls(specs);
  // Axial maps: the heatmaps are those of the chosen position's lines.
  const axial = specs.filter((o) => /^attention_axis\d+$/.test(o.name));
  const fixed = axial.length === 2 ? { [axial[0].dims.at(-1)]: state.sel.pos0 ?? 0, [axial[1].dims.at(-1)]: state.sel.pos1 ?? 0 } : {};
  for (const o of specs) {
    const s = slicer(o, fixed), d = o.t.data;
    let vmax = 0;
    for (const h of s.heads) {
      const b = s.base(h);
      for (let i = 0; i < s.rows * s.cols; i++) if (d[b + i] > vmax) vmax = d[b + i];
    }
    vmax = vmax || 1;
    const budget = s.heads.length > 1 ? 256 : 512;
    const pool = Math.max(1, Math.ceil(Math.max(s.rows, s.cols) / budget));
    const note = pool > 1 ? `drawn downsampled: each pixel block is the largest weight of ${pool}×${pool} entries (max-pooling ${s.rows}×${s.cols} to the canvas)` : "";
    const [rd, cd] = o.dims.slice(-2);
    const sec = el("section", { class: "mapview", "data-map": o.name },
      el("h3", {}, `${o.name} (${o.dims.join(",")})`), el("p", { class: "hint" }, o.doc || ""), legend(vmax, note));
    const grid = el("div", { class: "heads" });
    for (const h of s.heads) {
      const b = s.base(h);
      const label = `${o.name} · ${s.where(h)}`;
      const cv = heatmap({ get: (r, c) => d[b + r * s.cols + c], rows: s.rows, cols: s.cols, vmax, budget, label,
        describe: (r, c) => `query (${rd}) ${r} · ${colName(cd)} (${cd}) ${c}`, onHover: readout });
      cv.dataset.head = h === null ? "" : h;
      grid.append(el("figure", {}, cv, el("figcaption", {}, h === null ? "" : `${s.headDim} ${h}`)));
    }
    sec.append(grid);
    views.append(sec);
  }
  areaView(specs);
  axialView(specs);
}

/** Area models: the areas of one query drawn on the memory grid. */
function areaView(specs) {
  const areas = state.result.tensors.attention_areas, o = specs.find((s) => s.name === "attention");
  if (!areas || !o) return;
  const s = slicer(o), q = state.sel.query;
  const sec = el("section", { class: "mapview", "data-map": "areas" }, el("h3", {}, `areas of query ${q} on the memory grid`),
    el("p", { class: "hint" }, "Each memory cell is shaded by the summed weight of the areas that cover it; the heaviest areas are outlined (red: first)."));
  const grid = el("div", { class: "heads" });
  const row = (h) => o.t.data.subarray(s.base(h) + q * s.cols, s.base(h) + (q + 1) * s.cols);
  const vmax = Math.max(...s.heads.map((h) => areaMass(row(h), areas.data).max)) || 1;
  for (const h of s.heads) {
    const g = areaGrid({ weights: row(h), areas: areas.data, vmax, onHover: readout });
    g.canvas.dataset.head = h === null ? "" : h;
    grid.append(el("figure", {}, g.canvas, el("figcaption", {}, h === null ? "" : `${s.headDim} ${h}`), g.list));
  }
  sec.append(legend(vmax), grid);
  $("views").prepend(sec);
}

/** Axial models: at one position of the image grid, each axis' weights
 *  along its line through the position. */
function axialView(specs) {
  const axial = specs.filter((o) => /^attention_axis\d+$/.test(o.name));
  if (axial.length !== 2) return;
  const names = axial.map((o) => o.dims[o.dims.length - 1]);
  const size = axial.map((o) => o.t.shape[o.t.shape.length - 1]);
  const pos = [state.sel.pos0 ?? 0, state.sel.pos1 ?? 0];
  const sec = el("section", { class: "mapview", "data-map": "axial" },
    el("h3", {}, `position (${names[0]} ${pos[0]}, ${names[1]} ${pos[1]}) on the ${size[0]}×${size[1]} grid`),
    el("p", { class: "hint" }, "Click a cell to move the position. Each grid shows one axis' weights from the position along its line."));
  const grid = el("div", { class: "heads" });
  let vmax = 0;
  const rows = [];
  axial.forEach((o, k) => {
    const fixed = { [names[0]]: pos[0], [names[1]]: pos[1] };
    const s = slicer(o, fixed);
    for (const h of s.heads) {
      const b = s.base(h) + pos[k] * s.cols, w = o.t.data.subarray(b, b + s.cols);
      for (const v of w) if (v > vmax) vmax = v;
      rows.push({ o, k, h, w, s });
    }
  });
  vmax = vmax || 1;
  for (const { o, k, h, w, s } of rows) {
    const label = `${o.name}${h === null ? "" : ` · ${s.headDim} ${h}`}`;
    const cv = axialGrid({ rows: size[0], cols: size[1], pos, axis: k, weights: w, vmax, label, onHover: readout,
      onPick: (p) => {
        state.sel.pos0 = p[0];
        state.sel.pos1 = p[1];
        drawViews();
      } });
    cv.dataset.head = h === null ? "" : h;
    cv.dataset.axis = k + 1;
    grid.append(el("figure", {}, cv, el("figcaption", {}, label)));
  }
  sec.append(legend(vmax), grid);
  $("views").prepend(sec);
}

// ---- the request as curl and Python ----
function snippets() {
  const m = state.meta, res = state.result, url = `${location.origin}/v2/models/${m.name}/infer`;
  const auth = state.token ? ` \\\n  -H "Authorization: Bearer $ATTND_API_KEY"` : "";
  $("curl").textContent = `curl -s -X POST ${url} \\\n  -H 'Content-Type: application/json'${auth} \\\n  -d @request.json`;
  const link = $("request-json");
  link.onclick = () => {
    const body = { inputs: res.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape,
      data: Array.from(t.data, (x) => (typeof x === "bigint" ? Number(x) : t.datatype === "BOOL" ? !!x : x)) })),
    outputs: res.outputs.map((o) => ({ name: o.name })) };
    if (Object.keys(res.parameters).length) body.parameters = res.parameters;
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([JSON.stringify(body)], { type: "application/json" }));
  };
  const key = state.token ? `, api_key=os.environ["ATTND_API_KEY"]` : "";
  const params = Object.keys(res.parameters).length ? `, parameters=req["parameters"]` : "";
  $("python").textContent = `import json, os
import numpy as np
from attnd import Client   # pip install ./clients/python

DT = {"FP32": np.float32, "BOOL": bool, "INT64": np.int64, "INT32": np.int32}
req = json.load(open("request.json"))       # the link above: this page's inputs
inputs = {t["name"]: np.array(t["data"], dtype=DT[t["datatype"]]).reshape(t["shape"]) for t in req["inputs"]}
client = Client("${location.origin}"${key})
result = client.infer("${m.name}", inputs${params}, outputs=[${res.outputs.map((o) => JSON.stringify(o.name)).join(", ")}])
for name in result:
    print(name, result[name].shape)`;
}

// ---- start ----
$("run").addEventListener("click", run);
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("attnd-token", state.token);
  $("token-form").hidden = true;
  loadIndex();
});
$("model-filter").addEventListener("input", () => {
  const f = $("model-filter").value.toLowerCase();
  for (const li of $("models").children) li.hidden = !(li.dataset.model + " " + (li.dataset.type || "")).toLowerCase().includes(f);
});
loadIndex();
