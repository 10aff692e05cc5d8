// convert_duckdb.mjs - DuckDB doing the same selection and GROUP BY as
// `heliox-ingest convert` on the bench's generated bills (bench/convert.sh).
// Prints "seconds" then one line per group: date provider gpu_type sum(6 places).
// Run only by the bench, with @duckdb/node-api installed in a temp dir.
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';

const [kind, file, mapFile, threads] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:', { threads: String(threads || 2) });
const con = await db.connect();

// The GPU map: AWS families, Azure sizes, Google SKU patterns.
const rows = fs.readFileSync(mapFile, 'utf8').split('\n').filter(l => l && !l.startsWith('#')).slice(1);
const fam = [], vm = [], sku = [];
for (const l of rows) {
  const m = l.match(/^([^,]*),([^,]*),([^,]*),([^,]*),/);
  if (!m) continue;
  const [, p, k, key, g] = m;
  if (p === 'aws' && k === 'family') fam.push(`('${key}','${g}')`);
  if (p === 'azure' && k === 'vm_size') vm.push(`('${key.toLowerCase()}','${g}')`);
  if (p === 'gcp' && k === 'sku') sku.push(`('${key.replace(/'/g, "''")}','${g}')`);
}
await con.run(`CREATE TABLE fam(f VARCHAR, g VARCHAR); INSERT INTO fam VALUES ${fam.join(',')};
  CREATE TABLE vm(k VARCHAR, g VARCHAR); INSERT INTO vm VALUES ${vm.join(',')};
  CREATE TABLE sku(re VARCHAR, g VARCHAR); INSERT INTO sku VALUES ${sku.join(',')};`);

const D = 'DECIMAL(38,20)';
const sql = kind === 'focus' ? `
WITH src AS (
  SELECT left(ChargePeriodStart, 10) d, ProviderName pn, SkuPriceDetails spd, x_UsageType ut,
         ChargeDescription cd, CAST(EffectiveCost AS ${D}) c
  FROM read_csv('${file}', header=true, all_varchar=true, nullstr=['NULL', ''])
  WHERE ChargeCategory = 'Usage' AND ChargeClass IS NULL
    AND coalesce(CommitmentDiscountStatus, '') <> 'Unused'),
k AS (
  SELECT d, c, CASE pn WHEN 'AWS' THEN 'aws' WHEN 'Microsoft' THEN 'azure' WHEN 'Google Cloud' THEN 'gcp' END p,
    CASE pn WHEN 'AWS' THEN split_part(coalesce(json_extract_string(spd, '$.InstanceType'),
                                                regexp_extract(ut, '[^:]*$')), '.', 1)
            WHEN 'Microsoft' THEN lower(coalesce(json_extract_string(spd, '$.InstanceType'),
                                   'Standard_' || replace(regexp_extract(cd, ' - (.*) - ', 1), ' ', '_')))
            ELSE cd END ikey
  FROM src)
SELECT d, p, g, sum(c) s FROM (
  SELECT d, p, fam.g, c FROM k JOIN fam ON k.p = 'aws' AND k.ikey = fam.f
  UNION ALL SELECT d, p, vm.g, c FROM k JOIN vm ON k.p = 'azure' AND k.ikey = vm.k
  UNION ALL SELECT d, p, sku.g, c FROM k JOIN sku ON k.p = 'gcp' AND regexp_matches(k.ikey, '(?i)' || sku.re))
GROUP BY ALL` : `
SELECT left(line_item_usage_start_date, 10) d, 'aws' p, fam.g,
  sum(CASE line_item_line_item_type
        WHEN 'DiscountedUsage' THEN CAST(reservation_effective_cost AS ${D})
        WHEN 'SavingsPlanCoveredUsage' THEN CAST(savings_plan_savings_plan_effective_cost AS ${D})
        ELSE CAST(line_item_unblended_cost AS ${D}) END) s
FROM read_csv('${file}', header=true, all_varchar=true)
JOIN fam ON fam.f = split_part(regexp_extract(line_item_usage_type, '[^:]*$'), '.', 1)
WHERE line_item_product_code = 'AmazonEC2'
  AND line_item_line_item_type IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage', 'Refund')
GROUP BY ALL`;

const t0 = process.hrtime.bigint();
const reader = await con.runAndReadAll(sql);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(secs.toFixed(3));
for (const r of reader.getRows()) {
  console.log(`${r[0]} ${r[1]} ${r[2]} ${r[3].toString()}`);
}
