// Drives a Ferry OData feed with three independent, real OData clients.
// Usage: node odata_clients.js FEED_ROOT TOKEN
// Prints one JSON object with what each client saw; exits non-zero on error.
'use strict';
const [feed, token] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from('bi-user:' + token).toString('base64');

async function olingo() {
  // Apache Olingo's JavaScript client (ts-odatajs): $metadata, then follow
  // @odata.nextLink page by page.
  const { oData } = require('ts-odatajs');
  const read = (uri, handler, accept) => new Promise((resolve, reject) =>
    oData.read({ requestUri: uri, headers: { Authorization: auth, Prefer: 'odata.maxpagesize=40', Accept: accept || 'application/json' } },
      (data, resp) => resolve({ data, resp }), (err) => reject(new Error('olingo: ' + (err.message || err) + ' ' + (err.response ? err.response.body : ''))), handler));
  const meta = await read(feed + '$metadata', oData.metadataHandler, 'application/xml');
  const schema = meta.data.dataServices.schema[0];
  const issueType = schema.entityType.find((t) => t.name === 'Issue');
  let uri = feed + 'Issues?$select=Key,Summary,Created', pages = 0, rows = 0, keys = new Set();
  while (uri) {
    const { data } = await read(uri);
    pages++;
    for (const r of data.value) { rows++; keys.add(r.Key); }
    uri = data['@odata.nextLink'];
  }
  return { properties: issueType.property.map((p) => p.name + ':' + p.type), pages, rows, distinct: keys.size };
}

async function lightOData() {
  // @odata/client (light-odata): $top and $count through its query builder.
  const { OData } = require('@odata/client');
  const client = OData.New4({ serviceEndpoint: feed, commonHeaders: { Authorization: auth } });
  const es = client.getEntitySet('Issues');
  const count = await es.count();
  const page = await client.newRequest({ collection: 'Issues', params: client.newParam().top(7).count(true).select('Key') });
  if (page.error) throw new Error('@odata/client: ' + JSON.stringify(page.error));
  return { count, top7: page.value.length, countInPage: page['@odata.count'] };
}

async function oJS() {
  // o.js with a percent-encoded system query option, as some clients send.
  const { o } = require('odata');
  const handler = o(feed, { headers: { Authorization: auth } });
  const rows = await handler.get('Issues?%24top=3&%24select=Key').query();
  return { rows: rows.length };
}

(async () => {
  const out = { olingo: await olingo(), light: await lightOData(), ojs: await oJS() };
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
