// Walks every entity set of a Ferry OData feed with real OData clients.
// Usage: node odata_tables.js FEED_ROOT TOKEN
// Apache Olingo's client (ts-odatajs) reads $metadata — entity sets, keys,
// navigation properties with their referential constraints and partners —
// then follows @odata.nextLink through every set in pages of 40;
// @odata/client asks each set's $count. Prints one JSON object.
'use strict';
const [feed, token] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from('bi-user:' + token).toString('base64');

async function main() {
  const { oData } = require('ts-odatajs');
  const read = (uri, handler, accept) => new Promise((resolve, reject) =>
    oData.read({ requestUri: uri, headers: { Authorization: auth, Prefer: 'odata.maxpagesize=40', Accept: accept || 'application/json' } },
      (data) => resolve(data), (err) => reject(new Error('olingo: ' + uri + ': ' + (err.message || err) + ' ' + (err.response ? err.response.body : ''))), handler));
  const meta = await read(feed + '$metadata', oData.metadataHandler, 'application/xml');
  const schema = meta.dataServices.schema[0];
  const container = schema.entityContainer;
  const sets = {};
  for (const es of container.entitySet) {
    const tname = es.entityType.split('.').pop();
    const type = schema.entityType.find((t) => t.name === tname);
    const navs = (type.navigationProperty || []).map((n) => {
      const rc = (n.referentialConstraint || [])[0];
      return n.name + ':' + n.type + (n.partner ? '~' + n.partner : '') + (rc ? '(' + rc.property + '=' + rc.referencedProperty + ')' : '');
    });
    const bindings = (es.navigationPropertyBinding || []).map((b) => b.path + '->' + b.target);
    let uri = feed + es.name, rows = 0, pages = 0;
    const keys = new Set();
    const k = Array.isArray(type.key) ? type.key[0] : type.key;
    const ref = Array.isArray(k.propertyRef) ? k.propertyRef[0] : k.propertyRef;
    const key = ref.name;
    while (uri) {
      const data = await read(uri);
      pages++;
      for (const r of data.value) { rows++; keys.add(String(r[key])); }
      uri = data['@odata.nextLink'];
    }
    sets[es.name] = { navs: navs.sort(), bindings: bindings.sort(), rows, pages, distinct: keys.size };
  }
  const { OData } = require('@odata/client');
  const client = OData.New4({ serviceEndpoint: feed, commonHeaders: { Authorization: auth } });
  for (const name of Object.keys(sets)) sets[name].count = await client.getEntitySet(name).count();
  return sets;
}

main().then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.stack || String(e)); process.exit(1); });
