// Builds the extension with esbuild: src/extension.ts into one CommonJS file
// dist/extension.js (`vscode` is provided by the editor, so it stays
// external). With --tests, each mocha test under src/test/ is bundled into
// out/test/ instead, so the tests run on plain Node without a TypeScript
// loader.
import { build } from "esbuild";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const tests = process.argv.includes("--tests");
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  external: ["vscode"],
  logLevel: "warning",
};

if (tests) {
  const dir = "src/test";
  // Recursive: the views' tests live in src/test/{views,chat,lm}/.
  const entryPoints = readdirSync(dir, { recursive: true })
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => join(dir, name));
  await build({ ...common, entryPoints, outdir: "out/test", outbase: dir });
} else {
  await build({
    ...common,
    entryPoints: ["src/extension.ts"],
    outfile: "dist/extension.js",
    minify: true,
  });
}
