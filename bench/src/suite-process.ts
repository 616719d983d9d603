/**
 * One benchmark suite in a process of its own, started by run.ts: selects the backend, runs the suite and
 * writes its results, the backend and the process's peak memory (the suite's alone) as JSON to the file given.
 *
 *   suite-process.ts <suite> <out.json> <backend> <threads> <quick: 0|1>
 */
import { writeFile } from 'node:fs/promises';
import { selectBackend } from '@crp/backend';
import * as tf from '@tensorflow/tfjs-core';
import { peakRssMiB } from './measure.js';
import { suites } from './suites/index.js';

export interface SuiteReport {
  suite: string;
  backend: string;
  threads: number;
  tfjs: string;
  peakRssMiB: number;
  results: import('./measure.js').BenchResult[];
}

const [name, out, backend, threadsArg, quick] = process.argv.slice(2);
const suite = suites[name!];
if (suite === undefined || out === undefined) {
  throw new Error(
    `usage: suite-process.ts <${Object.keys(suites).join('|')}> <out.json> <backend> <threads> <0|1>`,
  );
}
const threads = threadsArg === 'auto' ? 'auto' : Number(threadsArg);
const choice = await selectBackend({ prefer: [backend as 'wasm' | 'cpu'], threads });
const log = (s: string) => process.stderr.write(`[${name}] ${s}\n`);
log(`backend: ${tf.getBackend()} (${choice.threads} thread${choice.threads === 1 ? '' : 's'})`);
const results = await suite({ log, quick: quick === '1', threads: choice.threads });
const report: SuiteReport = {
  suite: name!,
  backend: choice.backend,
  threads: choice.threads,
  tfjs: tf.version_core,
  peakRssMiB: peakRssMiB(),
  results,
};
await writeFile(out, JSON.stringify(report));
