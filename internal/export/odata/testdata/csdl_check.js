// Converts CSDL XML (stdin) with the OASIS odata-csdl converter and checks
// the result. Prints one line per problem on stderr and exits 1 if any;
// prints the CSDL JSON on stdout. The converter itself exits 0 on errors, so
// its collected messages are what count.
"use strict";
const csdl = require("odata-csdl");
const xml = require("fs").readFileSync(0, "utf8");
const problems = [];
let json;
try {
  const messages = [];
  json = csdl.xml2json(xml, { messages });
  for (const m of messages) problems.push(`odata-csdl: ${m.message}`);
  csdl.xml2json(xml, { strict: true }); // strict mode throws on the first error
} catch (e) {
  problems.push(`odata-csdl: ${e.message}`);
}
if (json) {
  if (json.$Version !== "4.0") problems.push(`$Version is ${json.$Version}`);
  const [cns, cname] = (json.$EntityContainer || "").split(/\.(?=[^.]+$)/);
  const container = json[cns] && json[cns][cname];
  if (!container) problems.push("no entity container");
  for (const [setName, set] of Object.entries(container || {})) {
    if (setName.startsWith("$")) continue;
    const [ns, tname] = set.$Type.split(/\.(?=[^.]+$)/);
    const type = json[ns] && json[ns][tname];
    if (!type || type.$Kind !== "EntityType") { problems.push(`${setName}: type ${set.$Type} missing`); continue; }
    if (!Array.isArray(type.$Key) || type.$Key.length === 0) problems.push(`${setName}: no key`);
    for (const k of type.$Key || []) {
      const p = type[k];
      if (!p) problems.push(`${setName}: key ${k} is not a property`);
      else if (p.$Nullable || p.$Collection) problems.push(`${setName}: key ${k} nullable or collection`);
    }
    for (const [name, p] of Object.entries(type)) {
      if (name.startsWith("$") || typeof p !== "object") continue;
      if (p.$Kind === "NavigationProperty") {
        // A relation must lead somewhere real: the target type, its
        // constraint's properties on both ends, the partner pointing back,
        // and a binding to an entity set.
        const [tns, tn] = p.$Type.split(/\.(?=[^.]+$)/);
        const target = json[tns] && json[tns][tn];
        if (!target || target.$Kind !== "EntityType") { problems.push(`${setName}.${name}: target ${p.$Type} missing`); continue; }
        for (const [dep, prin] of Object.entries(p.$ReferentialConstraint || {})) {
          if (!type[dep]) problems.push(`${setName}.${name}: constraint property ${dep} missing`);
          if (!target[prin]) problems.push(`${setName}.${name}: referenced property ${prin} missing`);
          else if (type[dep] && (type[dep].$Type || "Edm.String") !== (target[prin].$Type || "Edm.String")) problems.push(`${setName}.${name}: ${dep} and ${prin} differ in type`);
        }
        if (p.$Partner) {
          const back = target[p.$Partner];
          if (!back || back.$Kind !== "NavigationProperty" || back.$Partner !== name) problems.push(`${setName}.${name}: partner ${p.$Partner} does not point back`);
        }
        if (!set.$NavigationPropertyBinding || !container[set.$NavigationPropertyBinding[name]]) problems.push(`${setName}.${name}: no binding to an entity set`);
        continue;
      }
      // CSDL JSON leaves $Scale out for "variable"; XML without Scale means 0.
      if (p.$Type === "Edm.Decimal" && p.$Scale !== undefined) problems.push(`${name}: Decimal with fixed scale ${p.$Scale}`);
    }
  }
}
for (const p of problems) console.error(p);
if (!problems.length) console.log(JSON.stringify(json));
process.exitCode = problems.length ? 1 : 0;
