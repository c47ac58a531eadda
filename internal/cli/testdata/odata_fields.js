// Reads every row of a Ferry Issues feed with Apache Olingo's JavaScript
// client (ts-odatajs), given the $metadata it read first, so the client
// knows each property's type (Collection(Edm.Int64), Edm.Boolean…).
// Usage: node odata_fields.js FEED_ROOT TOKEN
// Prints {"properties":[name:type…],"rows":[…]}; exits non-zero on error.
'use strict';
const [feed, token] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from('bi-user:' + token).toString('base64');
const { oData } = require('ts-odatajs');

const read = (uri, handler, accept, metadata) => new Promise((resolve, reject) =>
  oData.read({ requestUri: uri, headers: { Authorization: auth, Prefer: 'odata.maxpagesize=25', Accept: accept || 'application/json;odata.metadata=minimal' } },
    (data) => resolve(data), (err) => reject(new Error('olingo: ' + (err.message || err) + ' ' + (err.response ? err.response.body : ''))), handler, undefined, metadata));

(async () => {
  const metadata = await read(feed + '$metadata', oData.metadataHandler, 'application/xml');
  const issue = metadata.dataServices.schema[0].entityType.find((t) => t.name === 'Issue');
  const rows = [];
  let uri = feed + 'Issues';
  while (uri) {
    const data = await read(uri, undefined, undefined, metadata);
    rows.push(...data.value);
    uri = data['@odata.nextLink'];
  }
  process.stdout.write(JSON.stringify({ properties: issue.property.map((p) => p.name + ':' + p.type), rows }) + '\n');
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
