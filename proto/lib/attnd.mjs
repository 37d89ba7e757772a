// attnd.mjs — an attnd of our own on a free loopback port, and a plain HTTP
// client that shows every status, header and byte as sent.
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { ROOT } from "./contract.mjs";

export const API_TOKEN = "secret-api-token";
export const ADMIN_TOKEN = "secret-admin-token";

/** Starts build/attnd with a temporary copy of examples/models (plus a plain
 *  file named `blocker`, which a load cannot replace: a 500).  Resolves to
 *  {url, port, work, repo, log(), stop()}. */
export async function startAttnd(build, extraArgs = []) {
  const bin = path.resolve(build, "attnd");
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing (run make)`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-proto-"));
  const repo = path.join(work, "models");
  fs.cpSync(path.join(ROOT, "examples", "models"), repo, { recursive: true });
  fs.writeFileSync(path.join(repo, "blocker"), "a file where a model folder would go\n");
  fs.writeFileSync(path.join(work, "api.keys"), `${API_TOKEN}\n`);
  fs.writeFileSync(path.join(work, "admin.keys"), `${ADMIN_TOKEN}\n`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ATTND_")));
  const args = [
    "--host", "127.0.0.1", "--port", "0", "--model-repository", repo,
    "--api-key-file", path.join(work, "api.keys"), "--admin-key-file", path.join(work, "admin.keys"),
    ...extraArgs,
  ];
  const proc = spawn(bin, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  let exited = null;
  proc.on("exit", (code, signal) => (exited = { code, signal }));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`attnd did not say where it listens in 10 s:\n${log}`)), 10000);
    proc.stderr.on("data", (d) => {
      log += d.toString();
      const m = /listening on [^\s]*:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on("exit", () => {
      clearTimeout(timer);
      reject(new Error(`attnd exited:\n${log}`));
    });
  });
  const server = {
    url: `http://127.0.0.1:${port}`,
    port,
    work,
    repo,
    proc,
    log: () => log,
    get exited() {
      return exited;
    },
    /** SIGTERM, wait for the exit (SIGKILL after 15 s), remove the work dir. */
    async stop() {
      if (!exited) {
        const done = new Promise((r) => proc.on("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 15000);
        await done;
        clearTimeout(t);
      }
      if (!process.env.ATTND_KEEP_WORK) fs.rmSync(work, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < 200; i++) {
    const r = await request(port, { method: "GET", path: "/v2/health/ready" }).catch(() => null);
    if (r && r.status === 200) return server;
    await new Promise((res) => setTimeout(res, 50));
  }
  await server.stop();
  throw new Error(`attnd did not become ready in 10 s:\n${log}`);
}

/** One request on its own connection.  req: {method, path, headers, body
 *  (Buffer|string)}; a Content-Length header given overrides the body's.
 *  Resolves to {status, headers (lower-case names), body (Buffer)}. */
export function request(port, req) {
  return new Promise((resolve, reject) => {
    // keep-alive: attnd's own Connection header shows (close after errors
    // answered before the body, and while draining); the socket is ours alone
    const headers = { Connection: "keep-alive", ...(req.headers || {}) };
    const body = req.body === undefined ? null : Buffer.from(req.body);
    const lower = Object.keys(headers).map((k) => k.toLowerCase());
    if (body && !lower.includes("content-length")) headers["Content-Length"] = body.length;
    const r = http.request(
      { host: "127.0.0.1", port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          res.socket?.destroy();
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on("error", reject);
      },
    );
    r.on("error", (e) => {
      // the server may answer and close before the whole body went out (413)
      if (!r.res) reject(e);
    });
    if (body) r.write(body);
    r.end();
  });
}

/** A chunked upload on a raw socket, for a body over the server's limit:
 *  the chunks of `body` are sent until the server answers (attnd answers 413
 *  as soon as the body passes the limit, then reads and drops the rest, or
 *  closes), and the last (empty) chunk only with `terminate`.  Resolves to {status,
 *  headers, body} once the whole response is in; rejects when the
 *  connection ends without one. */
export function chunkedUpload(port, req) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let raw = Buffer.alloc(0);
    let answered = false, done = false;
    const head = [`${req.method} ${req.path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Transfer-Encoding: chunked",
      ...Object.entries(req.headers || {}).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");
    const body = Buffer.from(req.body);
    const step = 16 * 1024;
    let off = 0;
    // One chunk at a time with a turn of the event loop in between, so that
    // an answer is read before the next write: writing on after attnd has
    // answered and closed gets EPIPE, and Node then drops the socket with the
    // unread response.
    const more = () => {
      if (answered) return;
      if (off >= body.length) {
        if (req.terminate) sock.write("0\r\n\r\n");
        return;
      }
      const piece = body.subarray(off, off + step);
      off += step;
      sock.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]),
        () => setTimeout(() => setImmediate(more), 0));
    };
    const parse = () => {
      const end = raw.indexOf("\r\n\r\n");
      if (end < 0) return null;
      const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const n = Number(headers["content-length"] ?? NaN);
      const rest = raw.subarray(end + 4);
      if (!(rest.length >= n)) return null;
      return { status: Number(lines[0].split(" ")[1]), headers, body: rest.subarray(0, n) };
    };
    const finish = (r) => {
      done = true;
      sock.destroy();
      resolve(r);
    };
    sock.on("connect", () => {
      sock.write(head);
      more();
    });
    sock.on("data", (d) => {
      answered = true;
      raw = Buffer.concat([raw, d]);
      const r = parse();
      if (r && !done) finish(r);
    });
    sock.on("error", () => {}); // EPIPE or ECONNRESET after the answer
    sock.on("close", () => {
      if (!done) reject(new Error(`the connection closed without a whole response (${raw.length} bytes)`));
    });
    setTimeout(() => sock.destroy(), 10000).unref();
  });
}
