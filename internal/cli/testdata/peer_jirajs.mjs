// The jira.js peer of the export benchmarks: pages through search/jql with
// nextPageToken, 100 issues a page with the given fields, the way a Node
// connector built on jira.js reads a site. Prints {"rows","ms"}.
//
// NODE_PATH must point at interop/node_modules (ES modules ignore it, so
// jira.js is loaded by path from there).
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const nm = process.env.NODE_PATH;
const { createCloudClient } = await import(pathToFileURL(path.join(nm, 'jira.js', 'dist', 'index.js')).href);
const cfg = JSON.parse(process.env.PEER);
const client = createCloudClient({ host: cfg.base_url, auth: { type: 'basic', email: cfg.email, apiToken: cfg.api_token } });

const start = performance.now();
let rows = 0;
let token;
for (;;) {
  const page = await client.issueSearch.searchAndReconsileIssuesUsingJqlPost({
    jql: cfg.jql, fields: cfg.fields, maxResults: 100, nextPageToken: token,
  });
  rows += (page.issues ?? []).length;
  if (page.isLast || !page.nextPageToken) break;
  token = page.nextPageToken;
}
console.log(JSON.stringify({ rows, ms: performance.now() - start }));
