// `npm run gen:check`: fails when the committed generated code in src/gen/
// differs from what `buf generate` makes from ../../proto today, naming the
// stale files and the command that refreshes them. Generates into a temp
// folder so the working tree is never touched.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const committed = "src/gen";
const scratch = mkdtempSync(join(tmpdir(), "omnipanel-gen-"));
try {
  // The same template with only the output folder changed.
  const template = readFileSync("buf.gen.yaml", "utf8").replace(/out: src\/gen/, `out: ${join(scratch, "gen")}`);
  const templatePath = join(scratch, "buf.gen.yaml");
  writeFileSync(templatePath, template);
  execFileSync("node_modules/.bin/buf", ["generate", "--template", templatePath], { stdio: "inherit" });

  const fresh = listFiles(join(scratch, "gen"));
  const old = listFiles(committed);
  const stale = [];
  for (const file of new Set([...fresh.keys(), ...old.keys()])) {
    const a = fresh.get(file);
    const b = old.get(file);
    if (a === undefined) stale.push(`${committed}/${file} (no longer generated)`);
    else if (b === undefined) stale.push(`${committed}/${file} (missing)`);
    else if (!readFileSync(a).equals(readFileSync(b))) stale.push(`${committed}/${file} (differs)`);
  }
  if (stale.length > 0) {
    console.error("The generated code is stale:");
    for (const line of stale.sort()) console.error(`  ${line}`);
    console.error("Refresh it with: (cd clients/vscode && npm run gen), then commit src/gen/.");
    process.exitCode = 1;
  } else {
    console.log(`src/gen is up to date (${fresh.size} files).`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

function listFiles(root) {
  const files = new Map();
  const walk = (dir) => {
    let names;
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(root, path), path);
    }
  };
  walk(root);
  return files;
}
