// capture.mjs — records proto/examples/ from a live attnd:
//   node proto/lib/capture.mjs BUILD_DIR      (proto/capture_examples.sh)
import fs from "node:fs";
import path from "node:path";

import { startAttnd } from "./attnd.mjs";
import { EXAMPLES, format, toExample } from "./examples.mjs";
import { runScenario, SERVER_ARGS } from "./scenario.mjs";

const build = process.argv[2];
if (!build) {
  console.error("usage: node proto/lib/capture.mjs BUILD_DIR");
  process.exit(2);
}
const server = await startAttnd(build, SERVER_ARGS);
let exchanges;
try {
  exchanges = await runScenario(server);
} finally {
  await server.stop();
}
const written = new Set();
for (const ex of exchanges) {
  if (ex.response.status !== ex.step.expect)
    throw new Error(`${ex.step.name}: ${ex.response.status}, expected ${ex.step.expect}: ${ex.response.body}`);
  if (!ex.step.example) continue;
  const e = toExample(ex);
  if (ex.step.name === "metrics") {
    // one model's lines and the server-wide ones: the whole text is ~80 KB
    e.response.text = e.response.text.split("\n").filter((l) => !/model="/.test(l) || /model="full"/.test(l)).join("\n");
    e.response.excerpt = "lines of models other than the built-in full left out";
    delete e.response.headers["Content-Length"];
  }
  fs.writeFileSync(path.join(EXAMPLES, `${ex.step.example}.json`), format(e) + "\n");
  written.add(`${ex.step.example}.json`);
}
for (const f of fs.readdirSync(EXAMPLES)) if (f.endsWith(".json") && !written.has(f)) fs.rmSync(path.join(EXAMPLES, f));
console.log(`capture: ${written.size} examples in ${EXAMPLES}`);
