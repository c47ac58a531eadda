// atlassian-connect-express serving an endpoint equivalent to Ferry's
// GET /app-api/tokens: a Connect JWT checked by ACE's authenticate() (HS256
// with the tenant's shared secret from the store, qsh), then one read from
// the same store (Sequelize on PostgreSQL, as Ferry's on PostgreSQL). The
// tenant is put in the store directly: ACE's install route would fetch
// Atlassian's install keys, which a loopback run cannot reach. Prints one
// JSON line {url, authorization} when it listens. Used by scripts/load.
const fs = require("fs");
const path = require("path");
const express = require("express");
const ace = require("atlassian-connect-express");
const jwt = require("atlassian-jwt");

const port = parseInt(process.env.PORT, 10);
const base = `http://127.0.0.1:${port}`;
const work = fs.mkdtempSync(path.join(require("os").tmpdir(), "ace-"));
process.chdir(work);
fs.writeFileSync("config.json", JSON.stringify({
  production: {
    port, localBaseUrl: base, watch: false, setupInstallRoute: false,
    store: { adapter: "sequelize", url: process.env.ACE_DB_URL, logging: false, pool: { max: 10 } }
  }
}));
fs.writeFileSync("atlassian-connect.json", JSON.stringify({
  key: "ferry-ace-peer", name: "ACE peer", baseUrl: base, authentication: { type: "jwt" },
  apiVersion: 1, scopes: ["READ"], modules: {}
}));

const app = express();
app.set("env", "production");
app.use(express.json());
const addon = ace(app, {}, { info() {}, warn() {}, error: console.error }, {});
const clientKey = "load-client-key";
const sharedSecret = "load-shared-secret-0123456789abcdef0123456789";

app.get("/api/tokens", addon.authenticate(), async (req, res) => {
  const tokens = await addon.settings.get("tokens", req.context.clientKey);
  res.json(tokens || []);
});

addon.on("error", console.error);
(async () => {
  await addon.settings.set("clientInfo", {
    key: "ferry-ace-peer", clientKey, sharedSecret, baseUrl: "https://load.atlassian.net", productType: "jira"
  }, clientKey);
  await addon.settings.set("tokens", [{ id: "t1", label: "Power BI laptop", hint: "fry_AbCd", created: new Date().toISOString() }], clientKey);
  const now = Math.floor(Date.now() / 1000);
  const req = jwt.fromMethodAndUrl("GET", "/api/tokens");
  const token = jwt.encodeSymmetric({ iss: clientKey, sub: "557058:load-user", iat: now, exp: now + 600,
    qsh: jwt.createQueryStringHash(req) }, sharedSecret);
  app.listen(port, "127.0.0.1", () => {
    console.log(JSON.stringify({ url: base + "/api/tokens", authorization: "JWT " + token }));
  });
})().catch(err => { console.error(err); process.exit(1); });
