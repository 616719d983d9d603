/**
 * Self time of a V8 CPU profile (`mprt-profile.ts --cpu-prof FILE`, `node --cpu-prof`) by function and by
 * package or file, per run. The sampler ticks on wall time, so on a loaded machine the figures include time the
 * thread waited for a core: read the shares, and take CPU time from the profiled script itself.
 *
 *   pnpm --filter @crp/bench exec tsx src/cpuprofile-table.ts FILE [--runs 20] [--top 40]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { runs: { type: 'string', default: '1' }, top: { type: 'string', default: '40' } },
});
if (positionals.length !== 1) throw new Error('usage: cpuprofile-table.ts FILE [--runs N] [--top N]');
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const runs = Number(values.runs);
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));

/** Where a function lives: wasm code, TF.js' packages, a workspace package, else its file. */
function placeOf({ functionName, url }: ProfileNode['callFrame']): string {
  if (functionName.startsWith('wasm-function') || url.startsWith('wasm')) return 'wasm code (kernels)';
  if (url === '') return '(native / VM: GC, idle)';
  const tfjs = /@tensorflow\/(tfjs-[a-z-]+)\//.exec(url);
  if (tfjs !== null) return tfjs[1]!;
  const workspace = /packages\/([^/]+)\//.exec(url);
  if (workspace !== null) return `@crp/${workspace[1]}`;
  return url.replace(/.*node_modules\//, '');
}

const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
let total = 0;
// a sample's time is the delta to the next sample (microseconds)
for (let i = 0; i < profile.samples.length; i++) {
  const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
  const { callFrame } = nodes.get(profile.samples[i]!)!;
  const name = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.split('/').pop()}:${callFrame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  const place = placeOf(callFrame);
  byPlace.set(place, (byPlace.get(place) ?? 0) + ms);
  total += ms;
}
const print = (title: string, table: Map<string, number>, top: number) => {
  console.log(`\n${title}`);
  for (const [key, ms] of [...table].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `${(ms / runs).toFixed(2).padStart(9)} ms/run ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${key}`,
    );
  }
};
console.log(`${(total / runs).toFixed(1)} ms sampled per run (${runs} runs)`);
print('by package or file', byPlace, 20);
print('by function (self time)', byFunction, Number(values.top));
