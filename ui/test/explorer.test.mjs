// explorer.test.mjs — the explorer page (ui/) in Debian's headless chromium,
// driven by playwright-core (ui/test.sh runs it).  Each check compares what
// the page draws or prints with what attnd returned: the test reads the
// /infer replies itself (the binary framing, decoded here, not by the page)
// and reads pixels back from the canvases.  Screenshots go to
// $ATTND_BUILD/ui-screenshots/.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BUILD = process.env.ATTND_BUILD || path.join(ROOT, "build");
const SHOTS = path.join(BUILD, "ui-screenshots");
const CHROMIUM = process.env.ATTND_CHROMIUM || "/usr/bin/chromium";
const TOKEN = "ui-test-token";
fs.mkdirSync(SHOTS, { recursive: true });

// ---- attnd of our own ----
const servers = [];
async function startAttnd(args) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-ui-"));
  fs.writeFileSync(path.join(work, "api.keys"), `${TOKEN}\n`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ATTND_")));
  const full = ["--port", "0", "--model-repository", path.join(ROOT, "examples", "models"),
    ...args.map((a) => a.replace("@KEYS", path.join(work, "api.keys")))];
  if (!full.includes("--host")) full.unshift("--host", "127.0.0.1");
  const proc = spawn(path.join(BUILD, "attnd"), full, { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`attnd did not start:\n${log}`)), 15000);
    proc.stderr.on("data", (d) => {
      log += d;
      const m = /listening on \S*:(\d+)/.exec(log);
      if (m && /ready:/.test(log)) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    proc.on("exit", () => reject(new Error(`attnd exited:\n${log}`)));
  });
  const host = full[full.indexOf("--host") + 1];
  const s = { url: host === "::1" ? `http://[::1]:${port}` : `http://127.0.0.1:${port}`, proc, work, log: () => log };
  servers.push(s);
  return s;
}

// ---- the binary framing, decoded independently of the page ----
function decode(body, headerLength) {
  const n = headerLength === undefined ? body.length : Number(headerLength);
  const header = JSON.parse(body.subarray(0, n).toString("utf8"));
  const out = {};
  let off = n;
  for (const o of header.outputs) {
    const size = o.parameters.binary_data_size;
    assert.equal(o.datatype, "FP32", `${o.name}'s datatype`);
    const copy = Buffer.from(body.subarray(off, off + size)); // aligned
    out[o.name] = { shape: o.shape, data: new Float32Array(copy.buffer, copy.byteOffset, size / 4) };
    off += size;
  }
  assert.equal(off, body.length, "the outputs' binary_data_size add up to the body");
  return out;
}

// The page's colour scale, written out again: viridis stops, 0 -> grey, NaN -> magenta.
const STOPS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99],
  [170, 220, 50], [253, 231, 37]];
function colour(v, vmax) {
  if (Number.isNaN(v)) return [255, 0, 255];
  if (v === 0) return [221, 221, 221];
  const t = Math.min(1, Math.max(0, v / vmax)) * 8;
  const i = Math.min(7, Math.floor(t)), f = t - i;
  return STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * f));
}
function sameColour(got, want, what) {
  const d = Math.max(...got.map((g, k) => Math.abs(g - want[k])));
  assert.ok(d <= 1, `${what}: pixel rgb(${got}) is not rgb(${want})`);
}

// ---- driving the page ----
let browser;
async function openPage(server) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  await page.goto(`${server.url}/ui/`);
  return page;
}
async function loaded(page) {
  await page.waitForSelector("body[data-models=loaded]", { timeout: 15000 });
}
async function choose(page, model) {
  await page.click(`li[data-model="${model}"] button`);
  await page.waitForFunction((m) => document.getElementById("model-name").textContent === m && !document.getElementById("inputs-box").hidden, model);
}
async function setSize(page, sym, v) {
  await page.fill(`[data-sym="${sym}"]`, String(v));
}
/** Clicks Run; resolves to {status, json (errors), maps (decoded outputs)}. */
async function run(page, { timeout = 30000 } = {}) {
  const reply = page.waitForResponse((r) => r.url().endsWith("/infer"), { timeout });
  await page.click("#run");
  const r = await reply;
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout });
  let body, status = r.status(), hl = r.headers()["inference-header-content-length"];
  try {
    body = await r.body();
  } catch {
    // Too large for the browser's inspector cache (the 2048 maps): the same
    // request again, from here (the server's results are deterministic).
    const req = r.request();
    const headers = { ...(await req.allHeaders()), "accept-encoding": "identity" };
    const again = await fetch(req.url(), { method: "POST", body: req.postDataBuffer(), headers });
    status = again.status;
    hl = again.headers.get("inference-header-content-length") ?? undefined;
    body = Buffer.from(await again.arrayBuffer());
  }
  if (status !== 200) return { status, json: JSON.parse(body.toString("utf8")) };
  return { status: 200, out: decode(body, hl) };
}
async function pixels(page, selector, pts) {
  return page.$eval(selector, (cv, pts) => {
    const g = cv.getContext("2d");
    return pts.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3)));
  }, pts);
}
async function geometry(page, selector) {
  return page.$eval(selector, (cv) => ({ rows: +cv.dataset.rows, cols: +cv.dataset.cols, pool: +cv.dataset.pool,
    cell: +cv.dataset.cell, vmax: +cv.dataset.vmax, width: cv.width, height: cv.height }));
}
const centre = (g, r, c) => [c * g.cell + Math.floor(g.cell / 2), r * g.cell + Math.floor(g.cell / 2)];
const maxOf = (d, from, n) => {
  let m = 0;
  for (let i = from; i < from + n; i++) if (d[i] > m) m = d[i];
  return m;
};
async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Every cell of the heatmaps of map `name` (a rank-4 (batch, head, rows,
 *  cols) map, batch b shown, every head) against the server's weights. */
async function checkHeatmaps(page, out, name, b) {
  const t = out[name];
  const [, H, R, C] = t.shape;
  const vmax = maxOf(t.data, b * H * R * C, H * R * C) || 1;
  let masked = 0;
  for (let h = 0; h < H; h++) {
    const sel = `section[data-map="${name}"] canvas.map[data-head="${h}"]`;
    const g = await geometry(page, sel);
    assert.deepEqual([g.rows, g.cols, g.pool], [R, C, 1]);
    assert.ok(Math.abs(g.vmax - vmax) <= 1e-6 * vmax, `${name}: the scale's top ${g.vmax}, not ${vmax}`);
    const pts = [];
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) pts.push([r, c]);
    const got = await pixels(page, sel, pts.map(([r, c]) => centre(g, r, c)));
    pts.forEach(([r, c], i) => {
      const w = t.data[((b * H + h) * R + r) * C + c];
      if (w === 0) masked++;
      sameColour(got[i], colour(w, vmax), `${name} batch ${b} head ${h} (${r}, ${c}) weight ${w}`);
    });
  }
  return masked;
}

async function hoverCheck(page, selector, g, r, c, want, words) {
  await page.locator(selector).scrollIntoViewIfNeeded();
  const box = await page.locator(selector).boundingBox();
  const [x, y] = centre(g, r, c);
  await page.mouse.move(box.x + 1 + x, box.y + 1 + y); // the canvas' 1px border
  const text = await page.textContent("#readout");
  for (const w of words) assert.ok(text.includes(w), `readout "${text}" lacks "${w}"`);
  const m = /weight (\S+)/.exec(text);
  assert.ok(m, `readout "${text}" has no weight`);
  assert.ok(Math.abs(Number(m[1]) - want) <= 1e-5 * Math.max(1e-3, Math.abs(want)), `readout weight ${m[1]}, server ${want}`);
}

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
});
after(async () => {
  await browser?.close();
  for (const s of servers) {
    s.proc.kill("SIGTERM");
    fs.rmSync(s.work, { recursive: true, force: true });
  }
});

describe("the explorer page", () => {
  let server;
  before(async () => {
    server = await startAttnd([]);
  });

  test("its files: Content-Type, no outside URL, 404 for others", async () => {
    for (const [f, ct] of [["", "text/html"], ["index.html", "text/html"], ["app.js", "text/javascript"],
      ["maps.js", "text/javascript"], ["tensors.js", "text/javascript"], ["style.css", "text/css"]]) {
      const r = await fetch(`${server.url}/ui/${f}`);
      assert.equal(r.status, 200, f);
      assert.equal(r.headers.get("content-type"), `${ct}; charset=utf-8`, f);
      const text = await r.text();
      assert.equal(text, fs.readFileSync(path.join(ROOT, "ui", f || "index.html"), "utf8"), `${f} is ui/${f}`);
      assert.doesNotMatch(text, /(src|href)="?https?:|import[^;]*https?:|url\(https?:/, `${f} loads nothing from outside`);
    }
    const r = await fetch(`${server.url}/ui/../server/ui.c`);
    assert.equal(r.status, 404);
  });

  test("full: per-head heatmaps equal the weights, causal and length masks drawn, hover readout, batch selector", async () => {
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "full");
    assert.equal(await page.textContent('[data-fact="type"]'), "full");
    for (const [k, v] of [["N", 2], ["L", 6], ["S", 8], ["H", 3], ["E", 4], ["D", 4]]) await setSize(page, k, v);
    await page.check('[data-send="attn_mask"]');
    await page.selectOption('[data-pattern="attn_mask"]', "tril");
    await page.check('[data-send="key_lengths"]');
    await page.fill('[data-value="key_lengths"]', "5");
    await page.fill("#seed", "7");
    const res = await run(page);
    assert.equal(res.status, 200);
    assert.equal(await page.isHidden("#error"), true);
    assert.deepEqual(res.out.attention.shape, [2, 3, 6, 8]);
    const masked = await checkHeatmaps(page, res.out, "attention", 0);
    // causal: key s > l is 0; key_lengths 5: keys 5.. are 0 — drawn grey
    let want = 0;
    for (let l = 0; l < 6; l++) for (let s = 0; s < 8; s++) if (s > l || s >= 5) want++;
    assert.equal(masked, want * 3, "masked cells (causal + key_lengths) over 3 heads");
    const a = res.out.attention;
    const g = await geometry(page, 'section[data-map="attention"] canvas.map[data-head="1"]');
    await hoverCheck(page, 'section[data-map="attention"] canvas.map[data-head="1"]', g, 4, 2, a.data[((0 * 3 + 1) * 6 + 4) * 8 + 2],
      ["head (H) 1", "query (L) 4", "key (S) 2"]);
    // the statistics row of the map
    const max = Number(await page.textContent('#stats tr[data-output="attention"] td:nth-child(5)'));
    assert.ok(Math.abs(max - maxOf(a.data, 0, a.data.length)) < 1e-5);
    await shot(page, "full");
    // batch 1, then one head alone
    await page.selectOption('[data-select="dim:N"]', "1");
    await checkHeatmaps(page, res.out, "attention", 1);
    await page.selectOption('[data-select="head"]', "2");
    assert.equal(await page.locator('section[data-map="attention"] canvas.map').count(), 1);
    // the request as curl and Python
    assert.match(await page.textContent("#curl"), new RegExp(`${server.url}/v2/models/full/infer`));
    const python = await page.textContent("#python");
    assert.match(python, /client\.infer\("full", inputs/);
    // ... and the Python snippet runs: request.json from the page's link, then
    // clients/python against the same server gives the same maps' shape.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-ui-py-"));
    await page.click("summary:has-text('the request as curl and Python')");
    const dl = page.waitForEvent("download");
    await page.click("#request-json");
    await (await dl).saveAs(path.join(dir, "request.json"));
    const req = JSON.parse(fs.readFileSync(path.join(dir, "request.json"), "utf8"));
    assert.deepEqual(req.inputs.map((t) => t.name), ["queries", "keys", "values", "attn_mask", "key_lengths"]);
    const py = spawnSync("/usr/bin/python3", ["-c", python], { cwd: dir, encoding: "utf8", timeout: 60000,
      env: { ...process.env, PYTHONPATH: path.join(ROOT, "clients", "python", "src") } });
    assert.equal(py.status, 0, `the Python snippet: ${py.stderr}`);
    assert.match(py.stdout, /^attention \(2, 3, 6, 8\)$/m);
    assert.match(py.stdout, /^output \(2, 6, 3, 4\)$/m);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("a screenshot for a person (README's docs/img/explorer.png is one)", async () => {
    const page = await openPage(server);
    await page.setViewportSize({ width: 1280, height: 860 });
    await loaded(page);
    await choose(page, "full");
    for (const [k, v] of [["N", 1], ["L", 32], ["S", 32], ["H", 4], ["E", 8], ["D", 8]]) await setSize(page, k, v);
    await page.check('[data-send="attn_mask"]');
    await page.selectOption('[data-pattern="attn_mask"]', "tril");
    await page.check('[data-send="key_lengths"]');
    await page.fill('[data-value="key_lengths"]', "28");
    assert.equal((await run(page)).status, 200);
    const sel = 'section[data-map="attention"] canvas.map[data-head="1"]';
    await page.locator("#latency").scrollIntoViewIfNeeded();
    await page.evaluate(() => window.scrollBy(0, document.getElementById("latency").getBoundingClientRect().top - 40));
    const g = await geometry(page, sel), box = await page.locator(sel).boundingBox();
    await page.mouse.move(box.x + 1 + centre(g, 20, 9)[0], box.y + 1 + centre(g, 20, 9)[1]);
    await page.screenshot({ path: path.join(SHOTS, "explorer.png") });
    await page.close();
  });

  test("area: the chosen query's areas shaded on the memory grid, the heaviest outlined", async () => {
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "area_max_mean_2d");
    await setSize(page, "Nq", 5);
    const res = await run(page);
    assert.equal(res.status, 200);
    const w = res.out.attention, areas = res.out.attention_areas;
    const A = w.shape[2];
    assert.deepEqual(areas.shape, [A, 4]);
    await page.selectOption('[data-select="query"]', "3");
    const q = w.data.subarray(3 * A, 4 * A);
    let H = 0, W = 0;
    for (let a = 0; a < A; a++) {
      H = Math.max(H, areas.data[a * 4] + areas.data[a * 4 + 2]);
      W = Math.max(W, areas.data[a * 4 + 1] + areas.data[a * 4 + 3]);
    }
    const mass = new Float32Array(H * W);
    for (let a = 0; a < A; a++) {
      const [t, l, h, ww] = areas.data.subarray(a * 4, a * 4 + 4);
      for (let r = t; r < t + h; r++) for (let c = l; c < l + ww; c++) mass[r * W + c] += q[a];
    }
    const sel = 'section[data-map="areas"] canvas.map';
    const g = await geometry(page, sel);
    assert.deepEqual([g.rows, g.cols], [H, W], "the memory grid's size (3 x 4)");
    const vmax = maxOf(mass, 0, mass.length);
    const pts = [];
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) pts.push([r, c]);
    const got = await pixels(page, sel, pts.map(([r, c]) => centre(g, r, c)));
    pts.forEach(([r, c], i) => sameColour(got[i], colour(mass[r * W + c], vmax), `memory cell (${r}, ${c})`));
    // the heaviest area: first in the list, outlined in red along its left edge
    let best = 0;
    for (let a = 1; a < A; a++) if (q[a] > q[best]) best = a;
    const [t, l, h] = areas.data.subarray(best * 4, best * 4 + 3);
    assert.match(await page.textContent('section[data-map="areas"] ol.areas li'), new RegExp(`^area ${best}: top ${t}, left ${l}`));
    const [edge] = await pixels(page, sel, [[l * g.cell + 1, t * g.cell + Math.floor((h * g.cell) / 2)]]);
    sameColour(edge, [228, 0, 43], `the outline of area ${best}`);
    // the (Nq x A) heatmap too, and the hover readout of a cell
    const hm = 'section[data-map="attention"] canvas.map';
    const hg = await geometry(page, hm);
    const [px] = await pixels(page, hm, [centre(hg, 3, best)]);
    sameColour(px, colour(q[best], maxOf(w.data, 0, w.data.length)), "the heatmap's cell of the heaviest area");
    await hoverCheck(page, hm, hg, 3, best, q[best], ["query (Nq) 3", `area (A) ${best}`]);
    await shot(page, "area");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("multi_head_area: each head's areas of a query on the memory grid, on one scale", async () => {
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "multi_head_area_2d");
    await setSize(page, "Nq", 4);
    const res = await run(page);
    assert.equal(res.status, 200);
    const w = res.out.attention, areas = res.out.attention_areas; // (B, heads, Nq, A)
    const [, heads, nq, A] = w.shape;
    assert.equal(nq, 4);
    await page.selectOption('[data-select="query"]', "2");
    const masses = [];
    for (let h = 0; h < heads; h++) {
      const q = w.data.subarray((h * nq + 2) * A, (h * nq + 3) * A);
      const m = new Float32Array(3 * 4);
      for (let a = 0; a < A; a++) {
        const [t, l, hh, ww] = areas.data.subarray(a * 4, a * 4 + 4);
        for (let r = t; r < t + hh; r++) for (let c = l; c < l + ww; c++) m[r * 4 + c] += q[a];
      }
      masses.push(m);
    }
    const vmax = Math.max(...masses.map((m) => maxOf(m, 0, m.length)));
    for (let h = 0; h < heads; h++) {
      const sel = `section[data-map="areas"] canvas.map[data-head="${h}"]`;
      const g = await geometry(page, sel);
      assert.deepEqual([g.rows, g.cols], [3, 4]);
      const pts = [];
      for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) pts.push([r, c]);
      const got = await pixels(page, sel, pts.map(([r, c]) => centre(g, r, c)));
      pts.forEach(([r, c], i) => sameColour(got[i], colour(masses[h][r * 4 + c], vmax), `head ${h} memory cell (${r}, ${c})`));
    }
    await shot(page, "multi_head_area");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("axial: a picked position's per-axis weights on the image grid", async () => {
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "axial_image_sum");
    await setSize(page, "A1", 6);
    await setSize(page, "A2", 7);
    const res = await run(page);
    assert.equal(res.status, 200);
    const a1 = res.out.attention_axis1, a2 = res.out.attention_axis2; // (B,A2,heads,A1,A1), (B,A1,heads,A2,A2)
    assert.deepEqual(a1.shape, [1, 7, 2, 6, 6]);
    assert.deepEqual(a2.shape, [1, 6, 2, 7, 7]);
    // pick (2, 5) by clicking the cell on the first grid
    const first = 'section[data-map="axial"] canvas.map[data-axis="1"][data-head="0"]';
    let g = await geometry(page, first);
    const box = await page.locator(first).boundingBox();
    const [x, y] = centre(g, 2, 5);
    await page.mouse.click(box.x + 1 + x, box.y + 1 + y);
    await page.waitForFunction(() => /position \(A1 2, A2 5\)/.test(document.querySelector('section[data-map="axial"] h3').textContent));
    const heads = 2;
    const line1 = (h) => a1.data.subarray((((0 * 7 + 5) * heads + h) * 6 + 2) * 6, (((0 * 7 + 5) * heads + h) * 6 + 2) * 6 + 6);
    const line2 = (h) => a2.data.subarray((((0 * 6 + 2) * heads + h) * 7 + 5) * 7, (((0 * 6 + 2) * heads + h) * 7 + 5) * 7 + 7);
    let vmax = 0;
    for (let h = 0; h < heads; h++) for (const v of [...line1(h), ...line2(h)]) vmax = Math.max(vmax, v);
    for (let h = 0; h < heads; h++) {
      for (const axis of [1, 2]) {
        const sel = `section[data-map="axial"] canvas.map[data-axis="${axis}"][data-head="${h}"]`;
        g = await geometry(page, sel);
        assert.deepEqual([g.rows, g.cols], [6, 7]);
        const pts = [];
        for (let r = 0; r < 6; r++) for (let c = 0; c < 7; c++) pts.push([r, c]);
        const got = await pixels(page, sel, pts.map(([r, c]) => centre(g, r, c)));
        pts.forEach(([r, c], i) => {
          const on = axis === 1 ? c === 5 : r === 2;
          const want = !on ? [255, 255, 255] : colour(axis === 1 ? line1(h)[r] : line2(h)[c], vmax);
          sameColour(got[i], want, `axis ${axis} head ${h} cell (${r}, ${c})`);
        });
      }
    }
    const sel = 'section[data-map="axial"] canvas.map[data-axis="2"][data-head="1"]';
    await hoverCheck(page, sel, await geometry(page, sel), 2, 3, line2(1)[3], ["query (2,5)", "key (2, 3)"]);
    // the A1 x A1 heatmap of axis 1 is the one at A2 = 5
    const hm = 'section[data-map="attention_axis1"] canvas.map[data-head="0"]';
    const hg = await geometry(page, hm);
    const [px] = await pixels(page, hm, [centre(hg, 2, 4)]);
    const s1 = a1.data.subarray((0 * 7 + 5) * heads * 36, (0 * 7 + 5 + 1) * heads * 36);
    sameColour(px, colour(line1(0)[4], maxOf(s1, 0, s1.length)), "axis 1's heatmap at A2 = 5");
    await shot(page, "axial");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("compositional: the search maps with the mask, and the retrieval mixture", async () => {
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "compositional_mask");
    await setSize(page, "N", 8);
    await page.check('[data-send="mask"]');
    await page.selectOption('[data-pattern="mask"]', "prefix");
    const res = await run(page);
    assert.equal(res.status, 200);
    assert.deepEqual(res.out.attention.shape, [1, 3, 8, 8]);
    assert.deepEqual(res.out.attention_retrieval.shape, [1, 3, 8, 2]);
    const masked = await checkHeatmaps(page, res.out, "attention", 0);
    assert.equal(masked, 3 * 8 * 2, "keys 6 and 7 are masked for every query of the 3 searches");
    await checkHeatmaps(page, res.out, "attention_retrieval", 0);
    await shot(page, "compositional");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("L = S = 2048, 8 heads: max-pooled to the canvas, said on the page", async () => {
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "full");
    for (const [k, v] of [["N", 1], ["L", 2048], ["S", 2048], ["H", 8], ["E", 8], ["D", 8]]) await setSize(page, k, v);
    const t0 = Date.now();
    const res = await run(page, { timeout: 120000 });
    const ms = Date.now() - t0;
    assert.equal(res.status, 200);
    console.log(`# 2048 x 2048 x 8 heads: ${ms} ms from the click to the drawn maps (${await page.textContent("#latency")})`);
    assert.match(await page.textContent('section[data-map="attention"] .legend .note'), /downsampled.*8×8.*max-pooling 2048×2048/);
    const a = res.out.attention, n = 2048;
    for (const h of [0, 7]) {
      const sel = `section[data-map="attention"] canvas.map[data-head="${h}"]`;
      const g = await geometry(page, sel);
      assert.deepEqual([g.pool, g.width, g.height], [8, 256, 256]);
      const vmax = maxOf(a.data, 0, a.data.length);
      for (const [i, j] of [[0, 0], [100, 37], [255, 255], [128, 3]]) {
        let m = 0;
        for (let r = i * 8; r < i * 8 + 8; r++) for (let c = j * 8; c < j * 8 + 8; c++) m = Math.max(m, a.data[(h * n + r) * n + c]);
        const [px] = await pixels(page, sel, [[j, i]]);
        sameColour(px, colour(m, vmax), `head ${h} pooled block (${i}, ${j})`);
      }
    }
    // the readout of a pooled block: its ranges and its largest weight
    const sel = 'section[data-map="attention"] canvas.map[data-head="3"]';
    await page.locator(sel).scrollIntoViewIfNeeded();
    const box = await page.locator(sel).boundingBox();
    await page.mouse.move(box.x + 1 + 40.5, box.y + 1 + 200.5);
    const text = await page.textContent("#readout");
    const rg = /query \(L\) (\d+) · key \(S\) (\d+) … query \(L\) (\d+) · key \(S\) (\d+)/.exec(text);
    assert.ok(rg, text);
    const [r0, c0, r1, c1] = rg.slice(1).map(Number);
    assert.ok(r0 % 8 === 0 && c0 % 8 === 0 && r1 === r0 + 7 && c1 === c0 + 7 && Math.abs(r0 - 1600) <= 8 && Math.abs(c0 - 320) <= 8, text);
    let m = 0;
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) m = Math.max(m, a.data[(3 * n + r) * n + c]);
    const got = Number(/max (\S+) \(pooled 8×8\)/.exec(text)?.[1]);
    assert.ok(Math.abs(got - m) <= 1e-5 * m, `pooled readout ${text}, block max ${m}`);
    await shot(page, "full-2048");
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test("bad uploads show the error text and leave the page usable", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-ui-files-"));
    const npy = (shape, data) => {
      let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
      h += " ".repeat(63 - ((10 + h.length) % 64)) + "\n";
      return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]), Buffer.from(Uint16Array.of(h.length).buffer),
        Buffer.from(h), Buffer.from(Float32Array.from(data).buffer)]);
    };
    const safetensors = (name, shape, data) => {
      const body = Buffer.from(Float32Array.from(data).buffer);
      const h = Buffer.from(JSON.stringify({ [name]: { dtype: "F32", shape, data_offsets: [0, body.length] } }));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h, body]);
    };
    fs.writeFileSync(path.join(dir, "wrong_shape.npy"), npy([1, 4, 2, 3], Array(24).fill(0.5)));
    fs.writeFileSync(path.join(dir, "nonfinite.safetensors"),
      safetensors("queries", [1, 4, 2, 8], Array.from({ length: 64 }, (_, i) => (i === 9 ? NaN : i === 20 ? Infinity : 0.1))));
    fs.writeFileSync(path.join(dir, "text.safetensors"), "this is not a safetensors file\n");

    const page = await openPage(server);
    await loaded(page);
    await choose(page, "full");
    for (const [k, v] of [["N", 1], ["L", 4], ["S", 4], ["H", 2], ["E", 8], ["D", 8]]) await setSize(page, k, v);
    await page.selectOption('[data-source="queries"]', "file");
    const usable = async (what) => {
      await page.selectOption('[data-source="queries"]', "random");
      const ok = await run(page);
      assert.equal(ok.status, 200, `after ${what}: ${JSON.stringify(ok.json)}`);
      assert.equal(await page.isHidden("#error"), true, `after ${what} the error is gone`);
      assert.equal(await page.locator('section[data-map="attention"] canvas.map').count(), 2);
      await page.selectOption('[data-source="queries"]', "file");
    };
    for (const [file, kind] of [["wrong_shape.npy", "wrong shape"], ["nonfinite.safetensors", "non-finite"]]) {
      await page.setInputFiles('[data-file="queries"]', path.join(dir, file));
      const res = await run(page);
      assert.equal(res.status, 400, `${kind}: the server refuses it`);
      assert.equal(await page.textContent("#error"), `HTTP 400: ${res.json.error}`, `${kind}: the server's message is shown`);
      if (kind === "non-finite") assert.match(res.json.error, /finite|NaN|inf/i);
      await shot(page, `upload-${kind.replace(/ /g, "-")}`);
      await usable(kind);
    }
    // pasted JSON: a nested array that fits, then text that is not JSON
    await page.selectOption('[data-source="queries"]', "json");
    const q = Array.from({ length: 1 }, () => Array.from({ length: 4 }, (_, l) => Array.from({ length: 2 }, (_, h) =>
      Array.from({ length: 8 }, (_, e) => (l === e ? 1 : 0) + h))));
    await page.fill('[data-json="queries"]', JSON.stringify(q));
    assert.equal((await run(page)).status, 200, "a pasted nested array");
    await page.fill('[data-json="queries"]', "[[1, 2,");
    await page.click("#run");
    await page.waitForFunction(() => document.body.dataset.state === "error");
    assert.match(await page.textContent("#error"), /^queries: not JSON/);
    await usable("JSON that does not parse");
    await page.setInputFiles('[data-file="queries"]', path.join(dir, "text.safetensors"));
    await page.waitForFunction(() => !document.getElementById("error").hidden);
    assert.match(await page.textContent("#error"), /text\.safetensors: not a \.safetensors file/);
    await usable("a file that is not safetensors");
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});

describe("under API keys", () => {
  test("the page asks for the token and sends it", async () => {
    const server = await startAttnd(["--api-key-file", "@KEYS"]);
    const page = await openPage(server);
    await page.waitForSelector("#token-form:not([hidden])");
    assert.match(await page.textContent("#error"), /^HTTP 401: /);
    await page.fill("#token", TOKEN);
    await page.click('#token-form button[type="submit"]');
    await loaded(page);
    await choose(page, "full");
    const req = page.waitForRequest((r) => r.url().endsWith("/infer"));
    const res = await run(page);
    assert.equal((await req).headers().authorization, `Bearer ${TOKEN}`);
    assert.equal(res.status, 200);
    assert.match(await page.textContent("#curl"), /Authorization: Bearer \$ATTND_API_KEY/);
    await page.close();
  });
});

describe("limits", () => {
  test("maps over --max-attention-elements: the server's 413 message, and the page goes on", async () => {
    const server = await startAttnd(["--max-attention-elements", "100"]);
    const page = await openPage(server);
    await loaded(page);
    await choose(page, "full");
    const res = await run(page); // 1 x 8 x 8 x 8 = 512 elements
    assert.equal(res.status, 413);
    assert.equal(await page.textContent("#error"), `HTTP 413: ${res.json.error}`);
    assert.match(res.json.error, /512/);
    await page.uncheck("#want-maps");
    const ok = await run(page);
    assert.equal(ok.status, 200);
    assert.match(await page.textContent("#views"), /No maps were asked for/);
    await page.close();
  });
});

describe("--ui", () => {
  const page = async (args) => {
    const s = await startAttnd(args);
    const r = await fetch(`${s.url}/ui/`);
    return { status: r.status, body: await r.text() };
  };
  test("--ui=0 turns the page off", async () => {
    const r = await page(["--ui=0"]);
    assert.equal(r.status, 404);
    assert.match(r.body, /the explorer page is off/);
  });
  test("off by default on a non-loopback --host, on with --ui", async () => {
    assert.equal((await page(["--host", "0.0.0.0"])).status, 404);
    assert.equal((await page(["--host", "0.0.0.0", "--ui"])).status, 200);
    assert.equal((await page(["--host", "::1"])).status, 200);
  });
});
