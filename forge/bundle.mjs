// Bundles the Custom UI's script: @forge/bridge from npm (interop/), the
// transport that calls Ferry through invokeRemote, and the same app.js the
// Connect pages load (internal/web/forgeui/entry.js). Prints the bundle on
// standard output; forge/build writes it into forge/static.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, "interop", "package.json"));
const esbuild = require("esbuild");

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ["internal/web/forgeui/entry.js"],
  nodePaths: [path.join(root, "interop", "node_modules")],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2019",
  platform: "browser",
  legalComments: "eof",
  charset: "utf8",
  write: false,
  logLevel: "error",
});
process.stdout.write(result.outputFiles[0].contents);
