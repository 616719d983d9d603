import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type AttributionGraph, decompose as decomposeConcept, toMermaid, toSvg } from '@crp/attribution';
import { writeFileAtomic, writeJsonAtomic } from '@crp/common/node';
import { CondAttribution } from '@crp/core';
import { intArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers, targetArg } from '../checks.js';
import { checkWritable } from '../files.js';
import { meanStd, readModelInput } from '../images.js';
import { openModel } from '../load-model.js';
import {
  compositeArg,
  HELP,
  inputRange,
  modelHelp,
  modelInputArgs,
  modelOptions,
  targetOption,
} from '../model-data.js';
import { UsageError } from '../usage-error.js';

export const decomposeUsage = `crp decompose --model M --image IMG --target CLASS --layer L --concept K [options]

Decomposes concept K of layer L for class CLASS in one image into its sub-concepts in the layer below, recursively
(@crp/attribution decompose), and writes the attribution graph as JSON, SVG and Mermaid.

${modelHelp}
  --image FILE        PNG or JPEG (resized to the model's input)
${HELP.target} (required)
  --layer L           layer of the concept (see crp layers)
  --concept K         channel of that layer
  --depth N           levels (default 2)
  --width N           sub-concepts per node (default 3)
  --out FILE          the graph as JSON (default out/graph.json)
  --svg FILE          the graph as SVG (default: the JSON's path with .svg)
  --mermaid FILE      the graph as a Mermaid flowchart (printed on stdout without --json)`;

export interface DecomposeOutput {
  file: string;
  svg: string;
  mermaid?: string;
  graph: AttributionGraph;
}

export async function decompose(argv: string[], json: boolean): Promise<DecomposeOutput> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...modelOptions,
      ...targetOption,
      image: { type: 'string' },
      layer: { type: 'string' },
      concept: { type: 'string' },
      depth: { type: 'string', default: '2' },
      width: { type: 'string', default: '3' },
      out: { type: 'string', default: join('out', 'graph.json') },
      svg: { type: 'string' },
      mermaid: { type: 'string' },
    },
  });
  const modelPath = required('model', values.model);
  const image = required('image', values.image);
  const targetSpec = required('target', values.target);
  const layer = required('layer', values.layer);
  const concept = required('concept', intArg('concept', values.concept));
  const depth = intArg('depth', values.depth, 1)!;
  const width = intArg('width', values.width, 1)!;
  const input = modelInputArgs(values);
  const composite = compositeArg(values.composite!, inputRange(input));
  const out = values.out!;
  const svgFile = values.svg ?? `${out.replace(/\.json$/i, '')}.svg`;
  await checkWritable('--out', out, 'file');
  await checkWritable('--svg', svgFile, 'file');
  if (values.mermaid !== undefined) await checkWritable('--mermaid', values.mermaid, 'file');
  const model = await openModel(modelPath, input.inputSize);
  const crp = new CondAttribution(model, { composite });
  try {
    const g = crp.attributor.graph;
    const target = targetArg(targetSpec, g, undefined);
    checkLayers('layer', [layer], g);
    const channels = g.node(layer).outputShape.at(-1);
    if (typeof channels === 'number' && concept >= channels) {
      throw new UsageError(
        `--concept ${concept}: layer ${layer} has ${channels} channels (0 to ${channels - 1})`,
      );
    }
    workStarts();
    const picture = await readModelInput(image, g.inputShape, meanStd(input));
    let graph: AttributionGraph;
    try {
      graph = decomposeConcept(crp, picture.tensor, { target, layer, concept, depth, width });
    } finally {
      picture.tensor.dispose();
    }
    await mkdir(dirname(out), { recursive: true });
    await mkdir(dirname(svgFile), { recursive: true });
    await writeJsonAtomic(out, graph);
    await writeFileAtomic(svgFile, toSvg(graph));
    const mermaid = toMermaid(graph);
    if (values.mermaid !== undefined) {
      await mkdir(dirname(values.mermaid), { recursive: true });
      await writeFileAtomic(values.mermaid, `${mermaid}\n`);
    }
    if (!json) {
      console.log(
        `attribution graph of ${layer}:${concept} for class ${target} (${graph.nodes.length} nodes) -> ${out}, ${svgFile}`,
      );
      console.log(mermaid);
    }
    return {
      file: out,
      svg: svgFile,
      ...(values.mermaid === undefined ? {} : { mermaid: values.mermaid }),
      graph,
    };
  } finally {
    crp.dispose();
    model.dispose();
  }
}
