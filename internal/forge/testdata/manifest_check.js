// Validates Forge manifests against the JSON schema shipped in the npm
// package @forge/manifest (the one the Forge CLI lints with), using the
// validator and YAML parser that package depends on. Standard input: a JSON
// array of manifest texts (YAML). Standard output: a JSON object with the
// package version and, per manifest, {"valid": bool, "errors": [...]}.
const fs = require("fs");
const path = require("path");
const YAML = require("yaml");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const schema = require("@forge/manifest/schema.json");
const pkgDir = path.dirname(path.dirname(require.resolve("@forge/manifest")));
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(schema);
const results = JSON.parse(fs.readFileSync(0, "utf8")).map((text) => {
  const valid = validate(YAML.parse(text));
  return { valid, errors: (validate.errors || []).map((e) => e.instancePath + " " + e.message) };
});
process.stdout.write(JSON.stringify({ version, results }));
