import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectBackend } from '@crp/backend';
import * as tf from '@tensorflow/tfjs-core';
import { type BenchResult, peakRssMiB } from './measure.js';
import { attributionSuite } from './suites/attribution.js';
import { crpSuite } from './suites/crp.js';
import { lrpSuite } from './suites/lrp.js';

const suites: Record<string, (log: (s: string) => void) => Promise<BenchResult[]>> = {
  lrp: lrpSuite,
  crp: crpSuite,
  attribution: attributionSuite,
};

const here = dirname(fileURLToPath(import.meta.url));
const resultsFile = join(here, '..', 'results.json');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string', default: 'auto' },
    },
  });
  const selected = values.only ?? Object.keys(suites);
  for (const s of selected) {
    if (!(s in suites)) throw new Error(`unknown suite '${s}'; valid: ${Object.keys(suites).join(', ')}`);
  }
  const threads = values.threads === 'auto' ? 'auto' : Number(values.threads);
  const choice = await selectBackend({ prefer: [values.backend as 'wasm' | 'cpu'], threads });
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`backend: ${tf.getBackend()} (${choice.threads} thread${choice.threads === 1 ? '' : 's'})`);
  const fresh: BenchResult[] = [];
  for (const name of selected) fresh.push(...(await suites[name]!(log)));
  fresh.push({ name: `bench.${selected.join('+')}.peak_rss_mib`, value: peakRssMiB(), unit: 'MiB' });
  for (const r of fresh) r.note = `${r.note ? `${r.note}; ` : ''}${choice.backend} x${choice.threads}`;

  // keep results of suites not run this time (and of other packages' benches merged into the file)
  let previous: BenchResult[] = [];
  try {
    previous = JSON.parse(await readFile(resultsFile, 'utf8')) as BenchResult[];
  } catch {}
  // benches of packages that keep their own runner (the RAG package) write packages/*/bench-results.json
  for (const pkg of await readdir(join(here, '..', '..', 'packages'))) {
    try {
      const file = join(here, '..', '..', 'packages', pkg, 'bench-results.json');
      previous = [
        ...previous.filter((r) => !r.name.startsWith(`${pkg}.`)),
        ...(JSON.parse(await readFile(file, 'utf8')) as BenchResult[]),
      ];
    } catch {}
  }
  // the peak memory of earlier runs of other suite selections says nothing about this one
  previous = previous.filter((r) => !r.name.startsWith('bench.'));
  const names = new Set(fresh.map((r) => r.name));
  const merged = [...previous.filter((r) => !names.has(r.name)), ...fresh].sort((a, b) =>
    a.name.localeCompare(b.name),
  );
  const tmp = `${resultsFile}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(merged, null, 2)}\n`);
  await rename(tmp, resultsFile);

  const width = Math.max(...fresh.map((r) => r.name.length));
  console.log(`${'name'.padEnd(width)}  ${'value'.padStart(10)}  unit  note`);
  for (const r of fresh) {
    console.log(
      `${r.name.padEnd(width)}  ${r.value.toFixed(2).padStart(10)}  ${r.unit.padEnd(4)}  ${r.note ?? ''}`,
    );
  }
  console.log(`wrote ${resultsFile}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
