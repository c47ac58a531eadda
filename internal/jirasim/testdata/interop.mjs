// Drives the Jira simulator with Atlassian-ecosystem clients: jira.js (with
// its own zod response schemas set to throw on drift) over HTTP Basic, a
// Connect app JWT built by atlassian-jwt, and an OAuth bearer token from the
// JWT-bearer grant. Prints one JSON summary line for the Go test.
//
// NODE_PATH must point at interop/node_modules: ES modules ignore NODE_PATH,
// so packages are loaded by path from there.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const nm = process.env.NODE_PATH;
const require = createRequire(path.join(nm, 'noop.js'));
const ajwt = require('atlassian-jwt');
const { createCloudClient } = await import(pathToFileURL(path.join(nm, 'jira.js', 'dist', 'index.js')).href);

const cfg = JSON.parse(process.env.SIM_INTEROP);
const host = cfg.base_url;

// Connect JWT as a fetch middleware: the token's qsh must cover the exact
// URL jira.js sends, so it is computed at the last moment.
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (headers.get('x-connect-app')) {
    headers.delete('x-connect-app');
    const url = typeof input === 'string' ? input : input.url;
    const method = (init.method || 'GET').toUpperCase();
    const req = ajwt.fromMethodAndUrl(method, url);
    const now = Math.floor(Date.now() / 1000);
    const token = ajwt.encodeSymmetric({
      iss: cfg.addon_key, iat: now, exp: now + 180, qsh: ajwt.createQueryStringHash(req, false, host),
    }, cfg.shared_secret);
    headers.set('Authorization', `JWT ${token}`);
  }
  return realFetch(input, { ...init, headers });
};

async function bearerToken(accountId, scope) {
  const now = Math.floor(Date.now() / 1000);
  const assertion = ajwt.encodeSymmetric({
    iss: `urn:atlassian:connect:clientid:${cfg.oauth_client_id}`,
    sub: `urn:atlassian:connect:useraccountid:${accountId}`,
    tnt: host, aud: 'https://oauth-2-authorization-server.services.atlassian.com',
    iat: now, exp: now + 55,
  }, cfg.shared_secret);
  const resp = await realFetch(`${host}/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion, scope }),
  });
  if (resp.status !== 200) throw new Error(`token grant: ${resp.status} ${await resp.text()}`);
  const body = await resp.json();
  return body.access_token;
}

const common = { host, onSchemaMismatch: 'throw' };
const basic = createCloudClient({ ...common, auth: { type: 'basic', email: cfg.email, apiToken: cfg.api_token } });
const app = createCloudClient({ ...common, headers: { 'X-Connect-App': cfg.addon_key } });
const restrictedToken = await bearerToken(cfg.restricted_account_id, 'READ ACT_AS_USER');
const bearer = createCloudClient({ ...common, auth: { type: 'bearer', getToken: async () => restrictedToken } });

// Pages through search/jql with nextPageToken until isLast.
async function pageAll(client, viaGet, jql, fields, maxResults) {
  const keys = [];
  let token;
  let pages = 0;
  for (;;) {
    const params = { jql, fields, maxResults, nextPageToken: token };
    const page = viaGet
      ? await client.issueSearch.searchAndReconsileIssuesUsingJql(params)
      : await client.issueSearch.searchAndReconsileIssuesUsingJqlPost(params);
    pages++;
    for (const is of page.issues ?? []) keys.push(is.key ?? is.id);
    if (page.total !== undefined) throw new Error('search/jql returned total');
    if (page.isLast) break;
    if (!page.nextPageToken) throw new Error('no nextPageToken before the last page');
    token = page.nextPageToken;
  }
  return { keys, pages };
}

const jql = 'created >= "2000-01-01" ORDER BY key ASC';
const out = {};

// HTTP Basic as the site admin.
const me = await basic.myself.getCurrentUser();
const fields = await basic.issueFields.getFields();
const ids = await pageAll(basic, false, jql, ['id'], 1000);
const count = await basic.issueSearch.countIssues({ jql });
const full = await basic.issueSearch.searchAndReconsileIssuesUsingJqlPost({ jql, fields: ['*all'], maxResults: 100 });
const bulk = await basic.issues.bulkFetchIssues({ issueIdsOrKeys: ids.keys.slice(0, 100), fields: ['*all'] });
const logs = await basic.issues.getBulkChangelogs({ issueIdsOrKeys: ids.keys.slice(0, 50) });
const projects = await basic.projects.searchProjects({});
out.basic = {
  account_id: me.accountId, fields: fields.length, ids: ids.keys.length, pages: ids.pages, count: count.count,
  full_page: full.issues.length, bulk: bulk.issues.length, changelogs: logs.issueChangeLogs.length, projects: projects.values.length,
};

// Connect app JWT (atlassian-jwt), GET variant so the qsh covers a query.
const appPages = await pageAll(app, true, jql, ['id', 'key'], 700);
await app.appProperties.putAddonProperty({ addonKey: cfg.addon_key, propertyKey: 'interop', body: { ok: true } });
const prop = await app.appProperties.getAddonProperty({ addonKey: cfg.addon_key, propertyKey: 'interop' });
out.jwt = { keys: appPages.keys.length, pages: appPages.pages, property: prop.value };

// OAuth bearer acting as the restricted user.
const restricted = await pageAll(bearer, true, jql, ['key', 'summary'], 100);
out.bearer = { keys: restricted.keys.length, pages: restricted.pages, projects: [...new Set(restricted.keys.map(k => k.split('-')[0]))] };

// The page URL's qsh as atlassian-jwt computes it.
const pageUrl = new URL(cfg.page_url);
const claims = ajwt.decodeSymmetric(pageUrl.searchParams.get('jwt'), cfg.shared_secret, 'HS256');
const appBase = `${pageUrl.protocol}//${pageUrl.host}`;
out.page = {
  qsh_ok: claims.qsh === ajwt.createQueryStringHash(ajwt.fromMethodAndUrl('GET', cfg.page_url), false, appBase),
  sub: claims.sub,
};

console.log(JSON.stringify(out));
