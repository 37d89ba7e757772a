// The wire contract against itself, the registry, the examples and a live
// attnd.  Run by proto/test.sh (ATTND_BUILD is the build directory).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ADMIN_TOKEN, startAttnd } from "../lib/attnd.mjs";
import { Contract, openapiErrors, PROTO, ROOT } from "../lib/contract.mjs";
import { fromExample, readExamples } from "../lib/examples.mjs";
import { runScenario, send, SERVER_ARGS } from "../lib/scenario.mjs";

const BUILD = process.env.ATTND_BUILD;
if (!BUILD) throw new Error("set ATTND_BUILD to the build directory (proto/test.sh does)");
const ERROR_CODES = [400, 401, 404, 405, 409, 413, 415, 500, 503, 504];

let contract;
before(async () => {
  contract = await Contract.load();
});

const noErrors = (errors) => assert.deepEqual(errors, [], errors.join("\n"));
const hasErrors = (errors, what) => assert.ok(errors.length > 0, `the check did not catch: ${what}`);

// ---- the document ----------------------------------------------------------

describe("openapi.yaml", () => {
  test("is a valid OpenAPI 3.1 document (@readme/openapi-parser)", async () => {
    noErrors(await openapiErrors(path.join(PROTO, "openapi.yaml")));
  });

  test("every schema in it compiles (Ajv, JSON Schema 2020-12, strict)", () => {
    const ptrs = contract.schemaPointers();
    assert.ok(ptrs.length > 40, `only ${ptrs.length} schemas found`);
    for (const p of ptrs) assert.doesNotThrow(() => contract.validator(p), p);
  });

  test("documents every error status attnd uses", () => {
    const codes = new Set();
    for (const item of Object.values(contract.doc.paths))
      for (const op of Object.values(item)) for (const c of Object.keys(op.responses || {})) codes.add(Number(c));
    for (const c of Object.keys(contract.doc["x-attnd-unmatched-requests"].responses)) codes.add(Number(c));
    for (const c of ERROR_CODES) assert.ok(codes.has(c), `status ${c} is documented nowhere`);
  });
});

// ---- the config schemas ----------------------------------------------------

/** Differences between two folders of files: [] when equal. */
function compareDirs(want, got) {
  const a = fs.readdirSync(want).sort(), b = fs.readdirSync(got).sort();
  const diffs = [];
  for (const f of a) if (!b.includes(f)) diffs.push(`${f}: generated, not committed`);
  for (const f of b) if (!a.includes(f)) diffs.push(`${f}: committed, not generated`);
  for (const f of a.filter((f) => b.includes(f)))
    if (!fs.readFileSync(path.join(want, f)).equals(fs.readFileSync(path.join(got, f)))) diffs.push(`${f}: differs`);
  return diffs;
}

function generate() {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-schemas-"));
  const r = spawnSync("bash", [path.join(PROTO, "gen_schemas.sh"), BUILD, out], { encoding: "utf8" });
  assert.equal(r.status, 0, `gen_schemas.sh failed:\n${r.stderr}`);
  return out;
}

function goldenCases() {
  const dir = path.join(ROOT, "tests/golden/cases");
  return fs.readdirSync(dir).filter((d) => fs.existsSync(path.join(dir, d, "case.json"))).sort()
    .map((d) => ({ id: d, ...JSON.parse(fs.readFileSync(path.join(dir, d, "case.json"), "utf8")) }));
}

describe("proto/schemas", () => {
  let generated;
  before(() => {
    generated = generate();
  });
  after(() => fs.rmSync(generated, { recursive: true, force: true }));

  test("equal what gen_schemas.sh makes from `attn list` and `attn schema`", () => {
    const diffs = compareDirs(generated, path.join(PROTO, "schemas"));
    assert.deepEqual(diffs, [], `${diffs.join("\n")}\nrun: bash proto/gen_schemas.sh ${BUILD}`);
  });

  test("cover every type that `attn list` prints", () => {
    const list = spawnSync(path.join(BUILD, "attn"), ["list"], { encoding: "utf8" }).stdout;
    const types = list.split("\n").filter((l) => /^[A-Za-z0-9_]/.test(l)).map((l) => l.split(" ")[0]);
    assert.ok(types.length > 10, `only ${types.length} types in attn list`);
    for (const t of types) assert.ok(fs.existsSync(path.join(PROTO, "schemas", `${t}.json`)), `no schema for ${t}`);
  });

  test("compile (Ajv, strict)", () => {
    for (const f of fs.readdirSync(path.join(PROTO, "schemas")))
      assert.doesNotThrow(() => contract.validator(`schemas/${f}`), f);
  });

  const cases = goldenCases();
  test(`the ${cases.length} golden cases' configs validate against <type>.json and model-config.json`, () => {
    assert.ok(cases.length > 0);
    for (const c of cases) {
      noErrors(contract.check(`schemas/${c.type}.json`, c.config, `${c.id}: config`));
      noErrors(contract.check("schemas/model-config.json", { type: c.type, config: c.config }, `${c.id}`));
    }
  });

  test("examples/models/*/config.json validate against model-config.json", () => {
    const dir = path.join(ROOT, "examples/models");
    const models = fs.readdirSync(dir).filter((d) => fs.existsSync(path.join(dir, d, "config.json")));
    assert.ok(models.length > 0);
    for (const m of models)
      noErrors(contract.check("schemas/model-config.json", JSON.parse(fs.readFileSync(path.join(dir, m, "config.json"), "utf8")), m));
  });
});

// ---- the examples ----------------------------------------------------------

/** A load's parameters.config as text: its contentSchema (model-config.json). */
function configTextErrors(req) {
  const m = /^\/v2\/repository\/models\/[^/]+\/load$/.exec(req.path);
  if (!m || !req.body.length) return [];
  let json = req.body;
  const n = req.headers["inference-header-content-length"];
  if (n !== undefined) json = json.subarray(0, Number(n));
  const config = JSON.parse(json.toString("utf8")).parameters?.config;
  if (typeof config !== "string") return [];
  return contract.check("schemas/model-config.json", JSON.parse(config), `${req.path}: parameters.config`);
}

/** Every check of one exchange: the response always, the request when it succeeded. */
function exchangeErrors(request, response) {
  const errors = contract.responseErrors(response);
  if (response.status < 300) errors.push(...contract.requestErrors(request), ...configTextErrors(request));
  return errors;
}

describe("proto/examples", () => {
  const examples = readExamples();
  for (const [name, e] of Object.entries(examples)) {
    test(`${name} matches openapi.yaml`, () => {
      const { request, response } = fromExample(e);
      noErrors(exchangeErrors(request, response));
    });
  }

  test("cover every operation and every error status", () => {
    const ops = contract.operations();
    const seen = new Set(), codes = new Set();
    for (const e of Object.values(examples)) {
      const sel = contract.operation(e.request.method, e.request.path);
      if (sel.op) seen.add(sel.op.operationId);
      codes.add(e.response.status);
    }
    for (const id of Object.keys(ops)) assert.ok(seen.has(id), `no example for ${id} (${ops[id]})`);
    for (const c of ERROR_CODES) assert.ok(codes.has(c), `no example of a ${c}`);
  });
});

// ---- a live attnd ----------------------------------------------------------

describe("a live attnd", () => {
  let exchanges = [];
  let server;
  before(async () => {
    server = await startAttnd(BUILD, SERVER_ARGS);
    try {
      // besides the scenario: every model of the index, metadata and config
      const extra = async (port) => {
        const index = await send(port, { name: "index", request: { method: "POST", path: "/v2/repository/index",
          headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }, expect: 200 });
        const out = [];
        for (const m of JSON.parse(index.response.body.toString()).filter((m) => m.state === "READY")) {
          for (const suffix of ["", "/config"])
            out.push(await send(port, { name: `model ${m.name}${suffix}`, request: { method: "GET",
              path: `/v2/models/${m.name}${suffix}`, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }, expect: 200 }));
        }
        return out;
      };
      exchanges = await runScenario(server, { extra });
    } catch (e) {
      e.message += `\nattnd's log:\n${server.log()}`;
      throw e;
    } finally {
      await server.stop();
    }
  });

  test("answers every exchange as openapi.yaml says", async (t) => {
    assert.ok(exchanges.length > 60, `only ${exchanges.length} exchanges`);
    for (const ex of exchanges) {
      await t.test(ex.step.name, () => {
        const response = { method: ex.request.method, path: ex.request.path, ...ex.response };
        assert.equal(ex.response.status, ex.step.expect, `${ex.step.summary || ""}: ${ex.response.body.toString().slice(0, 300)}`);
        noErrors(exchangeErrors(ex.request, response));
      });
    }
  });

  test("the exchanges cover every operation and every error status", () => {
    const ops = contract.operations();
    const seen = new Set(), codes = new Set();
    for (const ex of exchanges) {
      const sel = contract.operation(ex.request.method, ex.request.path);
      if (sel.op) seen.add(sel.op.operationId);
      codes.add(ex.response.status);
    }
    for (const id of Object.keys(ops)) assert.ok(seen.has(id), `${id} (${ops[id]}) was not exercised`);
    for (const c of ERROR_CODES) assert.ok(codes.has(c), `no live ${c}`);
  });

  // ---- every check can fail ----
  describe("the checks catch a broken", () => {
    const find = (name) => {
      const ex = exchanges.find((e) => e.step.name === name);
      assert.ok(ex, `no exchange ${name}`);
      return { method: ex.request.method, path: ex.request.path, status: ex.response.status,
        headers: { ...ex.response.headers }, body: ex.response.body, request: ex.request };
    };
    const json = (r) => JSON.parse(r.body.toString());
    const withJson = (r, f) => {
      const v = json(r);
      f(v);
      return { ...r, body: Buffer.from(JSON.stringify(v)) };
    };

    test("response: the live ones pass, so the mutations below are what fails", () => {
      for (const n of ["infer_builtin", "infer_binary", "error_503", "error_401", "health_live", "server_metadata"])
        noErrors(contract.responseErrors(find(n)));
    });
    test("response: a required field missing", () => {
      hasErrors(contract.responseErrors(withJson(find("infer_builtin"), (v) => delete v.model_name)), "no model_name");
    });
    test("response: a field of the wrong type", () => {
      hasErrors(contract.responseErrors(withJson(find("server_metadata"), (v) => (v.limits.max_rank = "8"))), "max_rank a string");
    });
    test("response: a field the document does not have", () => {
      hasErrors(contract.responseErrors(withJson(find("error_404"), (v) => (v.code = 404))), "an extra field");
    });
    test("response: a config that its type's schema refuses", () => {
      hasErrors(contract.responseErrors(withJson(find("model_config"), (v) => (v.config.softmax_temp = "hot"))), "a bad config");
    });
    test("response: an undocumented status code", () => {
      hasErrors(contract.responseErrors({ ...find("infer_builtin"), status: 202 }), "status 202");
      hasErrors(contract.responseErrors({ ...find("error_405"), status: 418 }), "status 418 of an unmatched request");
    });
    test("response: an undocumented content type", () => {
      const r = find("infer_builtin");
      hasErrors(contract.responseErrors({ ...r, headers: { ...r.headers, "content-type": "text/html" } }), "text/html");
    });
    test("response: a required header missing", () => {
      const strip = (r, h) => ({ ...r, headers: Object.fromEntries(Object.entries(r.headers).filter(([k]) => k !== h)) });
      hasErrors(contract.responseErrors(strip(find("health_live"), "x-request-id")), "no X-Request-Id");
      hasErrors(contract.responseErrors(strip(find("error_503"), "retry-after")), "a 503 without Retry-After");
      hasErrors(contract.responseErrors(strip(find("error_401"), "www-authenticate")), "a 401 without WWW-Authenticate");
    });
    test("response: a body where there is none", () => {
      hasErrors(contract.responseErrors({ ...find("health_live"), body: Buffer.from("OK") }), "a health body");
    });
    test("response: the binary framing", () => {
      const r = find("infer_binary");
      const n = Number(r.headers["inference-header-content-length"]);
      hasErrors(contract.responseErrors({ ...r, headers: { ...r.headers, "inference-header-content-length": String(n - 1) } }), "a short header length");
      hasErrors(contract.responseErrors({ ...r, body: r.body.subarray(0, r.body.length - 4) }), "a short tensor");
      const { "inference-header-content-length": _, ...rest } = r.headers;
      hasErrors(contract.responseErrors({ ...r, headers: rest }), "no Inference-Header-Content-Length");
    });
    test("request: data and binary_data_size both", () => {
      const { request } = find("infer_binary");
      const n = Number(request.headers["inference-header-content-length"]);
      const header = JSON.parse(request.body.subarray(0, n).toString());
      header.inputs[0].data = [1, 0, 0, 1];
      const text = Buffer.from(JSON.stringify(header));
      const body = Buffer.concat([text, request.body.subarray(n)]);
      hasErrors(contract.requestErrors({ ...request, headers: { ...request.headers, "inference-header-content-length": String(text.length) }, body }), "data and binary_data_size");
    });
    test("request: a load config that model-config.json refuses", () => {
      const { request } = find("repository_load_json");
      const v = JSON.parse(request.body.toString());
      v.parameters.config = JSON.stringify({ type: "aft_full", config: { max_sequence_length: "12" } });
      hasErrors(configTextErrors({ ...request, body: Buffer.from(JSON.stringify(v)) }), "a string where an integer goes");
      v.parameters.config = { type: "no_such_type" };
      hasErrors(contract.requestErrors({ ...request, body: Buffer.from(JSON.stringify(v)) }), "an unknown type");
    });
    test("example: a mutated example fails", () => {
      const e = structuredClone(readExamples().server_metadata);
      delete e.response.json.extensions;
      const { response } = fromExample(e);
      hasErrors(contract.responseErrors(response), "an example without extensions");
    });
    test("config: a golden config with an unknown key or a wrong type", () => {
      const c = goldenCases().find((c) => c.type === "full");
      hasErrors(contract.check("schemas/full.json", { ...c.config, temperature: 1 }, "config"), "an unknown key");
      hasErrors(contract.check("schemas/full.json", { ...c.config, attention_dropout: "0.1" }, "config"), "a string dropout");
      hasErrors(contract.check("schemas/model-config.json", { type: "linear" }, "config.json"), "linear without its required config");
    });
    test("schemas: a committed schema that differs from the generated one", () => {
      const copy = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-schemas-"));
      try {
        fs.cpSync(path.join(PROTO, "schemas"), copy, { recursive: true });
        const f = path.join(copy, "full.json");
        const s = JSON.parse(fs.readFileSync(f, "utf8"));
        s.properties.softmax_temp.description += " (edited by hand)";
        fs.writeFileSync(f, JSON.stringify(s, null, 2) + "\n");
        fs.rmSync(path.join(copy, "local.json"));
        const diffs = compareDirs(path.join(PROTO, "schemas"), copy);
        assert.deepEqual(diffs.sort(), ["full.json: differs", "local.json: generated, not committed"]);
      } finally {
        fs.rmSync(copy, { recursive: true, force: true });
      }
    });
    test("document: invalid OpenAPI", async () => {
      // each variant is a file beside a copy of schemas/, as openapi.yaml is
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "attnd-openapi-"));
      const errorsOf = async (doc) => {
        const f = path.join(dir, "openapi.yaml");
        fs.writeFileSync(f, JSON.stringify(doc, null, 1)); // JSON is YAML
        return openapiErrors(f);
      };
      try {
        fs.cpSync(path.join(PROTO, "schemas"), path.join(dir, "schemas"), { recursive: true });
        noErrors(await errorsOf(contract.doc)); // the control: the copy itself is valid
        const doc = structuredClone(contract.doc);
        delete doc.components.responses.NotFound.description;
        hasErrors(await errorsOf(doc), "a response without a description");
        const doc2 = structuredClone(contract.doc);
        doc2.paths["/v2"].get.responses["200"].content["application/json"].schema = { $ref: "#/components/schemas/Nothing" };
        hasErrors(await errorsOf(doc2), "a dangling $ref");
        const doc3 = structuredClone(contract.doc);
        doc3.paths["/v2/models/{model_name}/config"].get.operationId = "modelMetadata";
        hasErrors(await errorsOf(doc3), "a duplicate operationId");
        hasErrors(await errorsOf({ ...structuredClone(contract.doc), openapi: "3.0.3" }), "OpenAPI 3.0");
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
