import { parseArgs } from 'node:util';
import { Attributor } from '@crp/lrp';
import { workStarts } from '../banner.js';
import {
  compositeArg,
  inputRange,
  modelHelp,
  modelInputArgs,
  modelOptions,
  openAttribution,
} from '../model-data.js';
import { UsageError } from '../usage-error.js';

export const layersUsage = `crp layers --model M [options]

Lists the model's layers as the toolkit sees them, with output shapes and the LRP rule each one gets.

${modelHelp}`;

export interface LayerRow {
  name: string;
  className: string;
  kind: string;
  outputShape: (number | null)[];
  rule: string;
  params: Record<string, number>;
}

export async function layers(argv: string[], json: boolean): Promise<LayerRow[]> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...modelOptions,
    },
  });
  if (values.model === undefined) throw new UsageError('--model is required');
  const input = modelInputArgs(values);
  const choice = compositeArg(values.composite, inputRange(input));
  const { model, attribution: lrp } = await openAttribution(
    values.model,
    input,
    choice,
    (m, composite) => new Attributor(m, { composite }),
  );
  workStarts();
  try {
    const rows = lrp.graph.nodes.map((n) => {
      const rule = lrp.ruleOf(n.id);
      return {
        name: n.id,
        className: n.className,
        kind: n.kind,
        outputShape: [...n.outputShape],
        rule: rule.name,
        params: { ...rule.params },
      };
    });
    if (!json) {
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        const params = Object.entries(r.params)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        console.log(
          `${r.name.padEnd(w)}  ${r.className.padEnd(22)} [${r.outputShape.join(', ')}]`.padEnd(w + 50) +
            ` ${r.rule} ${params}`,
        );
      }
    }
    return rows;
  } finally {
    lrp.dispose();
    model.dispose();
  }
}
