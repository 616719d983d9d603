import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type AttributionGraph, decompose as decomposeConcept, toMermaid, toSvg } from '@crp/attribution';
import { writeFileAtomic, writeJsonAtomic } from '@crp/common/node';
import { CondAttribution, defaultConcept } from '@crp/core';
import type { ModelGraph } from '@crp/lrp';
import { intArg, required } from '../args.js';
import { workStarts } from '../banner.js';
import { checkLayers, targetArg } from '../checks.js';
import { checkWritable } from '../files.js';
import { meanStd, readModelInput } from '../images.js';
import {
  type CompositeChoice,
  compositeArg,
  HELP,
  inputRange,
  type ModelInputOptions,
  modelHelp,
  modelInputArgs,
  modelOptions,
  openAttribution,
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
  --concept K         channel of that layer (a head at a ViT's self_attention.context)
  --depth N           levels (default 2)
  --width N           sub-concepts per node (default 3; per branch below an addition)
  --out FILE          the graph as JSON (default out/graph.json)
  --svg FILE          the graph as SVG (default: the JSON's path with .svg)
  --mermaid FILE      the graph as a Mermaid flowchart (printed on stdout without --json)`;

export interface DecomposeOutput {
  file: string;
  svg: string;
  mermaid?: string;
  graph: AttributionGraph;
}

/** The command line of `crp decompose`, checked. */
interface DecomposeArgs {
  modelPath: string;
  image: string;
  targetSpec: string;
  layer: string;
  concept: number;
  depth: number;
  width: number;
  input: ModelInputOptions;
  composite: CompositeChoice;
  out: string;
  svgFile: string;
  mermaidFile: string | undefined;
}

/** Parses and checks every argument that does not need the model. */
function parseDecomposeArgs(argv: string[]): DecomposeArgs {
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
  const composite = compositeArg(values.composite, inputRange(input));
  const out = values.out!;
  const svgFile = values.svg ?? `${out.replace(/\.json$/i, '')}.svg`;
  const mermaidFile = values.mermaid;
  return {
    modelPath,
    image,
    targetSpec,
    layer,
    concept,
    depth,
    width,
    input,
    composite,
    out,
    svgFile,
    mermaidFile,
  };
}

/** The class of --target, after checking that --concept is a concept (channel or head) of --layer. */
function checkConcept(args: DecomposeArgs, g: ModelGraph): number {
  const target = targetArg(args.targetSpec, g, undefined);
  checkLayers('layer', [args.layer], g);
  // a channel, or a head at an attention product (the layer's default concept)
  const shape = g.node(args.layer).outputShape;
  const concept = defaultConcept(g, args.layer);
  const count = shape.every((d) => typeof d === 'number') ? concept.count(shape as number[]) : undefined;
  const unit = concept.name === 'HeadConcept' ? 'heads' : 'channels';
  if (count !== undefined && args.concept >= count) {
    throw new UsageError(
      `--concept ${args.concept}: layer ${args.layer} has ${count} ${unit} (0 to ${count - 1})`,
    );
  }
  return target;
}

/** The attribution graph of the concept in --image. */
async function decomposeImage(
  args: DecomposeArgs,
  crp: CondAttribution,
  target: number,
): Promise<AttributionGraph> {
  const picture = await readModelInput(args.image, crp.attributor.graph.inputShape, meanStd(args.input));
  try {
    const { layer, concept, depth, width } = args;
    return decomposeConcept(crp, picture.tensor, { target, layer, concept, depth, width });
  } finally {
    picture.tensor.dispose();
  }
}

/** The graph as JSON, SVG and (with --mermaid) Mermaid; returns the Mermaid text. */
async function writeGraph(args: DecomposeArgs, graph: AttributionGraph): Promise<string> {
  await mkdir(dirname(args.out), { recursive: true });
  await mkdir(dirname(args.svgFile), { recursive: true });
  await writeJsonAtomic(args.out, graph);
  await writeFileAtomic(args.svgFile, toSvg(graph));
  const mermaid = toMermaid(graph);
  if (args.mermaidFile !== undefined) {
    await mkdir(dirname(args.mermaidFile), { recursive: true });
    await writeFileAtomic(args.mermaidFile, `${mermaid}\n`);
  }
  return mermaid;
}

/** `crp decompose`: check everything, open the model, decompose the concept in the image, write the graph. */
export async function decompose(argv: string[], json: boolean): Promise<DecomposeOutput> {
  const args = parseDecomposeArgs(argv);
  await checkWritable('--out', args.out, 'file');
  await checkWritable('--svg', args.svgFile, 'file');
  if (args.mermaidFile !== undefined) await checkWritable('--mermaid', args.mermaidFile, 'file');
  const { model, attribution: crp } = await openAttribution(
    args.modelPath,
    args.input,
    args.composite,
    (m, composite) => new CondAttribution(m, { composite }),
  );
  try {
    const target = checkConcept(args, crp.attributor.graph);
    workStarts();
    const graph = await decomposeImage(args, crp, target);
    const mermaid = await writeGraph(args, graph);
    if (!json) {
      console.log(
        `attribution graph of ${args.layer}:${args.concept} for class ${target} (${graph.nodes.length} nodes) -> ${args.out}, ${args.svgFile}`,
      );
      console.log(mermaid);
    }
    return {
      file: args.out,
      svg: args.svgFile,
      ...(args.mermaidFile === undefined ? {} : { mermaid: args.mermaidFile }),
      graph,
    };
  } finally {
    crp.dispose();
    model.dispose();
  }
}
