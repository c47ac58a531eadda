// Reads a CSV file with DuckDB (the @duckdb/node-api client) and prints the
// header and rows as JSON; NULL (an empty, unquoted field) is null.
// Usage: node csv_duckdb.js FILE
'use strict';
const { DuckDBInstance } = require('@duckdb/node-api');
const [path] = process.argv.slice(2);
(async () => {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const lit = "'" + path.replace(/'/g, "''") + "'";
  const r = await c.runAndReadAll(`SELECT * FROM read_csv(${lit}, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"', strict_mode = true)`);
  process.stdout.write(JSON.stringify([r.columnNames(), ...r.getRows()]) + '\n');
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
