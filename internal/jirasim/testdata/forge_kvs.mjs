// Drives the simulator's Forge storage REST API with Atlassian's own client,
// @forge/kvs, wired the way the Forge runtime wires it (a fetch function and
// a bearer token), so the request and response shapes are Atlassian's, not
// ours. Prints one JSON summary line for the Go test.
import { createRequire } from 'node:module';
import path from 'node:path';

const cfg = JSON.parse(process.env.SIM_FORGE_KVS);
// The runtime hooks @forge/kvs reads when it loads.
globalThis.__forge_runtime__ = {
  kvs: { url: cfg.storage_url, host: 'jirasim' },
  proxy: { token: cfg.system_token },
  tracing: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' },
};
const seen = [];
globalThis.__forge_fetch__ = async (_target, p, init) => {
  const headers = { ...init.headers };
  delete headers.Host; // the runtime's proxy routes by it; we call the URL directly
  seen.push(p);
  return fetch(cfg.storage_url + p.replace(/^\/api/, ''), { ...init, headers });
};
const require = createRequire(path.join(process.env.NODE_PATH, 'noop.js'));
const { kvs, WhereConditions } = require('@forge/kvs');

const out = {};
async function code(f) {
  try { await f(); return 'none'; } catch (e) { return e.code || String(e); }
}

await kvs.set('source:1', { name: 'Sales', jql: 'project = CORE' });
out.get = await kvs.get('source:1');
out.getMeta = await kvs.get('source:1', { metadataFields: ['CREATED_AT', 'UPDATED_AT'] });
out.missing = (await kvs.get('source:missing')) === undefined;
for (let i = 0; i < 12; i++) await kvs.set(`ds:${String(i).padStart(3, '0')}`, { i });
await kvs.set('other', true);
let keys = [], cursor, pages = 0;
do {
  let q = kvs.query().where('key', WhereConditions.beginsWith('ds:')).limit(5);
  if (cursor) q = q.cursor(cursor);
  const r = await q.getMany();
  keys.push(...r.results.map((x) => `${x.key}=${x.value.i}`));
  cursor = r.nextCursor;
  pages++;
} while (cursor && pages < 20);
out.query = { keys, pages };
out.getOne = (await kvs.query().where('key', WhereConditions.beginsWith('oth')).getOne())?.value;
await kvs.delete('source:1');
out.afterDelete = (await kvs.get('source:1')) === undefined;
out.deleteMissing = await code(() => kvs.delete('source:1'));
out.badKey = await code(() => kvs.set('bad/key', 1));
let deep = 'leaf';
for (let i = 0; i < 33; i++) deep = [deep];
out.tooDeep = await code(() => kvs.set('deep', deep));
out.paths = [...new Set(seen)].sort();
console.log(JSON.stringify(out));
