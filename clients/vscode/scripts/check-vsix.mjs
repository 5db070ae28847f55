// Checks a built .vsix: its manifest (name, publisher, version,
// extensionKind, engines, main present in the archive, every contributed
// command titled) and that no sources, tests or node_modules slipped in.
// Usage: node scripts/check-vsix.mjs path/to/omnipanel-X.vsix
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const vsix = process.argv[2];
if (!vsix) {
  console.error("usage: node scripts/check-vsix.mjs FILE.vsix");
  process.exit(2);
}
const problems = [];
const entries = execFileSync("unzip", ["-Z1", vsix], { encoding: "utf8" }).split("\n").filter(Boolean);
const manifest = JSON.parse(execFileSync("unzip", ["-p", vsix, "extension/package.json"], { encoding: "utf8" }));
const source = JSON.parse(readFileSync("package.json", "utf8"));

const expect = (what, actual, wanted) => {
  if (JSON.stringify(actual) !== JSON.stringify(wanted)) problems.push(`${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
};
expect("name", manifest.name, "omnipanel");
expect("publisher", manifest.publisher, "omnipanel");
expect("displayName", manifest.displayName, "OmniPanel");
expect("version", manifest.version, source.version);
expect("extensionKind", manifest.extensionKind, ["workspace"]);
expect("engines.vscode", manifest.engines?.vscode, "^1.104.0");
expect("main", manifest.main, "./dist/extension.js");
if (!entries.includes("extension/dist/extension.js")) problems.push("main (dist/extension.js) is not in the archive");
if (!entries.some((entry) => entry.toLowerCase() === "extension/readme.md")) problems.push("README.md is not in the archive");
for (const command of manifest.contributes?.commands ?? []) {
  if (typeof command.title !== "string" || command.title.trim() === "") problems.push(`command ${command.command} has no title`);
}
if ((manifest.contributes?.commands ?? []).length === 0) problems.push("no commands are contributed");
for (const entry of entries) {
  if (/(^|\/)node_modules\//.test(entry)) problems.push(`${entry}: node_modules must not be packaged (the bundle has them)`);
  if (/\.ts$|\.map$/.test(entry) || /^extension\/src\/(?!chat\/media\/|views\/media\/)/.test(entry)) problems.push(`${entry}: sources must not be packaged`);
  if (/(^|\/)(test|out)\//.test(entry)) problems.push(`${entry}: tests must not be packaged`);
}
if (problems.length > 0) {
  console.error(`${vsix} is not right:`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
console.log(`${vsix}: manifest and contents checked (${entries.length} entries).`);
