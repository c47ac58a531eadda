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
  // A sorted walk, as Power Query's sort folding asks: $orderby through
  // every page of Prefer: odata.maxpagesize=40.
  const sorted = [];
  uri = feed + 'Issues?$select=Key,Created&$orderby=Created%20desc';
  while (uri) {
    const { data } = await read(uri);
    for (const r of data.value) sorted.push(r.Key);
    uri = data['@odata.nextLink'];
  }
  // Changelog with $skip and $top through small pages.
  const changes = [];
  let cpages = 0;
  uri = feed + 'Changelog?$select=Id&$skip=5&$top=97';
  while (uri) {
    const { data } = await read(uri);
    cpages++;
    for (const r of data.value) changes.push(r.Id);
    uri = data['@odata.nextLink'];
  }
  return { properties: issueType.property.map((p) => p.name + ':' + p.type), pages, rows, distinct: keys.size, sorted, changes, changePages: cpages };
}

async function lightOData() {
  // @odata/client (light-odata): $top and $count through its query builder.
  const { OData } = require('@odata/client');
  const client = OData.New4({ serviceEndpoint: feed, commonHeaders: { Authorization: auth } });
  const es = client.getEntitySet('Issues');
  const count = await es.count();
  const page = await client.newRequest({ collection: 'Issues', params: client.newParam().top(7).count(true).select('Key') });
  if (page.error) throw new Error('@odata/client: ' + JSON.stringify(page.error));
  // $orderby and $skip through its query builder.
  const sorted = await client.newRequest({ collection: 'Issues', params: client.newParam().orderby('Updated', 'asc').skip(10).top(25).select('Key') });
  if (sorted.error) throw new Error('@odata/client: ' + JSON.stringify(sorted.error));
  const changes = await client.newRequest({ collection: 'Changelog', params: client.newParam().skip(20).top(15).select('Id') });
  if (changes.error) throw new Error('@odata/client: ' + JSON.stringify(changes.error));
  return { count, top7: page.value.length, countInPage: page['@odata.count'], sorted: sorted.value.map((r) => r.Key), changes: changes.value.map((r) => r.Id) };
}

async function oJS() {
  // o.js with a percent-encoded system query option, as some clients send.
  const { o } = require('odata');
  const handler = o(feed, { headers: { Authorization: auth } });
  const rows = await handler.get('Issues?%24top=3&%24select=Key').query();
  // $orderby and $skip on Changelog through its query object.
  const sorted = await o(feed, { headers: { Authorization: auth } }).get('Issues').query({ $orderby: 'Created asc', $top: 12, $select: 'Key' });
  const changes = await o(feed, { headers: { Authorization: auth } }).get('Changelog').query({ $skip: 7, $top: 9, $select: 'Id' });
  return { rows: rows.length, sorted: sorted.map((r) => r.Key), changes: changes.map((r) => r.Id) };
}

(async () => {
  const out = { olingo: await olingo(), light: await lightOData(), ojs: await oJS() };
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
