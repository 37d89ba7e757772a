// maps.js — drawing attention maps on canvases: the colour scale, heatmaps
// (max-pooled down to the canvas when a map is larger than it), the area
// grid and the axial image grid.  Every canvas carries its geometry in
// data-* attributes (rows, cols, pool, cell, vmax), which the hover readout
// and the browser tests read.
export const MASKED = [221, 221, 221]; // an entry exactly 0: a masked key (or nothing there)
export const NAN = [255, 0, 255];       // NaN: a row whose every key is masked
const STOPS = [ // viridis, at t = 0, 1/8, ..., 1
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];

/** The colour of weight v on a scale from 0 to vmax. */
export function colour(v, vmax) {
  if (Number.isNaN(v)) return NAN;
  if (v === 0) return MASKED;
  let t = vmax > 0 ? v / vmax : 0;
  t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t)), f = t - i;
  return STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * f));
}

export const fmt = (x) => (Number.isNaN(x) ? "NaN" : Number(x.toPrecision(6)).toString());

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k === "style") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}
export { el };

/** A legend: the gradient from 0 to vmax, and the masked / NaN swatches. */
export function legend(vmax, note) {
  const bar = el("canvas", { class: "legend-bar", width: 200, height: 12 });
  const g = bar.getContext("2d");
  for (let x = 0; x < 200; x++) {
    const c = colour(((x + 0.5) / 200) * vmax || Number.MIN_VALUE, vmax);
    g.fillStyle = `rgb(${c})`;
    g.fillRect(x, 0, 1, 12);
  }
  const sw = (c, text) => el("span", { class: "swatch" }, el("i", { style: `background: rgb(${c})` }), text);
  const box = el("div", { class: "legend" }, el("span", {}, "0"), bar, el("span", { class: "vmax" }, fmt(vmax)),
    sw(MASKED, "exactly 0 (masked)"), sw(NAN, "NaN"));
  if (note) box.append(el("span", { class: "note" }, note));
  return box;
}

/** Canvas size and pooling for a rows x cols map within `budget` pixels. */
export function layout(rows, cols, budget) {
  const pool = Math.max(1, Math.ceil(Math.max(rows, cols) / budget));
  const pr = Math.ceil(rows / pool), pc = Math.ceil(cols / pool);
  const cell = Math.max(1, Math.min(48, Math.floor(budget / Math.max(pr, pc))));
  return { pool, pr, pc, cell };
}

/** One heatmap: map(r, c) -> weight over rows x cols, drawn within budget
 *  pixels; blocks of pool x pool entries are max-pooled (NaN wins, and a
 *  block is "masked" only when every entry is exactly 0).  onHover(text)
 *  gets the readout. */
export function heatmap({ get, rows, cols, vmax, budget, label, describe, onHover }) {
  const { pool, pr, pc, cell } = layout(rows, cols, budget);
  const cv = el("canvas", { class: "map", width: pc * cell, height: pr * cell, "data-rows": rows, "data-cols": cols,
    "data-pool": pool, "data-cell": cell, "data-vmax": vmax, title: label });
  const g = cv.getContext("2d");
  const img = g.createImageData(cv.width, cv.height);
  const pooled = new Float32Array(pr * pc);
  for (let i = 0; i < pr; i++) {
    for (let j = 0; j < pc; j++) {
      let m = 0, nan = false;
      for (let r = i * pool; r < Math.min(rows, (i + 1) * pool); r++)
        for (let c = j * pool; c < Math.min(cols, (j + 1) * pool); c++) {
          const v = get(r, c);
          if (Number.isNaN(v)) nan = true;
          else if (v > m) m = v;
        }
      pooled[i * pc + j] = nan ? NaN : m;
    }
  }
  const px = img.data;
  for (let y = 0; y < cv.height; y++) {
    const row = Math.floor(y / cell) * pc;
    for (let x = 0; x < cv.width; x++) {
      const c = colour(pooled[row + Math.floor(x / cell)], vmax), o = (y * cv.width + x) * 4;
      px[o] = c[0];
      px[o + 1] = c[1];
      px[o + 2] = c[2];
      px[o + 3] = 255;
    }
  }
  g.putImageData(img, 0, 0);
  cv.addEventListener("mousemove", (ev) => {
    const j = Math.floor(ev.offsetX / cell), i = Math.floor(ev.offsetY / cell);
    if (i < 0 || j < 0 || i >= pr || j >= pc) return;
    if (pool === 1) {
      onHover(`${label} · ${describe(i, j)} · weight ${fmt(get(i, j))}`);
    } else {
      const r1 = Math.min(rows, (i + 1) * pool) - 1, c1 = Math.min(cols, (j + 1) * pool) - 1;
      onHover(`${label} · ${describe(i * pool, j * pool)} … ${describe(r1, c1)} · max ${fmt(pooled[i * pc + j])} (pooled ${pool}×${pool})`);
    }
  });
  cv.addEventListener("mouseleave", () => onHover(""));
  return cv;
}

/** The memory grid of an area model: each cell's total weight of the areas
 *  (of one query) that cover it.  areaGrid draws it, the `top` heaviest
 *  areas outlined. */
export function areaMass(weights, areas) {
  const A = weights.length;
  let H = 0, W = 0;
  for (let a = 0; a < A; a++) {
    H = Math.max(H, areas[a * 4] + areas[a * 4 + 2]);
    W = Math.max(W, areas[a * 4 + 1] + areas[a * 4 + 3]);
  }
  const mass = new Float32Array(H * W);
  for (let a = 0; a < A; a++) {
    const [t, l, h, w] = areas.subarray(a * 4, a * 4 + 4);
    for (let r = t; r < t + h; r++) for (let c = l; c < l + w; c++) mass[r * W + c] += weights[a];
  }
  let max = 0;
  for (const v of mass) if (v > max) max = v;
  return { mass, H, W, max };
}

/** areaMass drawn, on a scale from 0 to vmax (shared by the heads shown). */
export function areaGrid({ weights, areas, vmax, onHover, top = 3 }) {
  const A = weights.length;
  const { mass, H, W } = areaMass(weights, areas);
  const cell = Math.max(4, Math.min(64, Math.floor(384 / Math.max(H, W))));
  const cv = el("canvas", { class: "map area-grid", width: W * cell, height: H * cell, "data-rows": H, "data-cols": W,
    "data-pool": 1, "data-cell": cell, "data-vmax": vmax });
  const g = cv.getContext("2d");
  for (let r = 0; r < H; r++)
    for (let c = 0; c < W; c++) {
      g.fillStyle = `rgb(${colour(mass[r * W + c], vmax)})`;
      g.fillRect(c * cell, r * cell, cell, cell);
    }
  const order = Array.from({ length: A }, (_, a) => a).sort((x, y) => weights[y] - weights[x]).slice(0, top);
  g.lineWidth = 2;
  for (let k = order.length - 1; k >= 0; k--) { // the heaviest last, on top
    const [t, l, h, w] = areas.subarray(order[k] * 4, order[k] * 4 + 4);
    g.strokeStyle = k === 0 ? "#e4002b" : "#ff8c00";
    g.strokeRect(l * cell + 1, t * cell + 1, w * cell - 2, h * cell - 2);
  }
  cv.addEventListener("mousemove", (ev) => {
    const c = Math.floor(ev.offsetX / cell), r = Math.floor(ev.offsetY / cell);
    if (r >= H || c >= W) return;
    const cover = [];
    for (let a = 0; a < A; a++) {
      const [t, l, h, w] = areas.subarray(a * 4, a * 4 + 4);
      if (r >= t && r < t + h && c >= l && c < l + w) cover.push(a);
    }
    onHover(`memory cell (${r}, ${c}) · weight of the areas covering it ${fmt(mass[r * W + c])} · areas ${cover.join(", ")}`);
  });
  cv.addEventListener("mouseleave", () => onHover(""));
  const list = el("ol", { class: "areas", start: 1 });
  for (const a of order) {
    const [t, l, h, w] = areas.subarray(a * 4, a * 4 + 4);
    list.append(el("li", {}, `area ${a}: top ${t}, left ${l}, ${h}×${w} · weight ${fmt(weights[a])}`));
  }
  return { canvas: cv, list, mass, H, W };
}

/** An axial image grid (rows x cols): the cells of one line through the
 *  position, shaded by that axis' weights; the position outlined. */
export function axialGrid({ rows, cols, pos, axis, weights, vmax, onPick, onHover, label }) {
  const cell = Math.max(4, Math.min(48, Math.floor(320 / Math.max(rows, cols))));
  const cv = el("canvas", { class: "map axial-grid", width: cols * cell, height: rows * cell, "data-rows": rows,
    "data-cols": cols, "data-pool": 1, "data-cell": cell, "data-vmax": vmax, title: label });
  const g = cv.getContext("2d");
  const value = (r, c) => (axis === 0 ? (c === pos[1] ? weights[r] : null) : r === pos[0] ? weights[c] : null);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const v = value(r, c);
      g.fillStyle = v === null ? "#ffffff" : `rgb(${colour(v, vmax)})`;
      g.fillRect(c * cell, r * cell, cell, cell);
    }
  g.strokeStyle = "#e4002b";
  g.lineWidth = 2;
  g.strokeRect(pos[1] * cell + 1, pos[0] * cell + 1, cell - 2, cell - 2);
  cv.addEventListener("click", (ev) => onPick([Math.floor(ev.offsetY / cell), Math.floor(ev.offsetX / cell)]));
  cv.addEventListener("mousemove", (ev) => {
    const c = Math.floor(ev.offsetX / cell), r = Math.floor(ev.offsetY / cell);
    const v = value(r, c);
    onHover(v === null ? `${label} · (${r}, ${c}) is not on this axis' line through (${pos})`
      : `${label} · query (${pos}) · key (${r}, ${c}) · weight ${fmt(v)}`);
  });
  cv.addEventListener("mouseleave", () => onHover(""));
  return cv;
}
