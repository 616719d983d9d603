/**
 * `pnpm --filter @crp/rag exec tsx scripts/map-cost.ts [--root DIR] [--index DIR] [--runs 3]`
 *
 * What building the map costs, as the engine pays it on the first map of an index version (the meaning space
 * and the UMAP fit): `--runs` times in one process, in CPU time (the process's own, so a loaded machine changes it
 * less than wall time) and wall time. `--root` is a checkout of this repository whose `packages/rag/src` is
 * measured (default: this one), so two versions can be compared on the same index and in the same minutes. The
 * index (default: `pnpm rag:eval`'s cache folder) is only read.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    root: { type: 'string', default: path.resolve(here, '../../..') },
    index: { type: 'string', default: path.join(os.tmpdir(), 'crp-rag-eval-use-lite-static-512') },
    runs: { type: 'string', default: '3' },
  },
});
const rag = (await import(
  path.join(path.resolve(values.root!), 'packages/rag/src/node.ts')
)) as typeof import('../src/node.js');
const index = await rag.RagIndex.open({
  dir: path.resolve(values.index!),
  embedding: new rag.UseLiteEmbedding(),
});
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
for (let r = 0; r < Number(values.runs); r++) {
  const c0 = cpu();
  const w0 = performance.now();
  new rag.RagEngine(index).fittedMap();
  console.log(
    `${values.root}: map of ${index.chunks.length} chunks built in ${(cpu() - c0).toFixed(0)} ms CPU, ${(performance.now() - w0).toFixed(0)} ms wall (load average ${os.loadavg()[0]!.toFixed(1)})`,
  );
}
