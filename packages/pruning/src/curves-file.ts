import { writeFileAtomic } from '@crp/common/node';
import { renderSvg } from '@crp/vis';
import { curvesChart, curvesTable, type PruningCurvesResult } from './experiments.js';

/** Writes `<prefix>.json`, `<prefix>.md` and `<prefix>.svg` (each atomically) and returns their paths. */
export async function writeCurves(result: PruningCurvesResult, prefix: string): Promise<string[]> {
  const svg = await renderSvg(curvesChart(result));
  const files: [string, string][] = [
    [`${prefix}.json`, `${JSON.stringify(result, null, 2)}\n`],
    [`${prefix}.md`, curvesTable(result)],
    [`${prefix}.svg`, svg],
  ];
  for (const [path, text] of files) await writeFileAtomic(path, text);
  return files.map(([p]) => p);
}
