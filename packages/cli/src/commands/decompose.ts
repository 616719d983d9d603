import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type AttributionGraph, decompose as decomposeConcept, toMermaid, toSvg } from '@crp/attribution';
import { writeFileAtomic, writeJsonAtomic } from '@crp/common/node';
import { CondAttribution } from '@crp/core';
import { compositeByName } from '@crp/lrp';
import { inputSizeArg, intArg, required } from '../args.js';
import { NORMALIZATIONS, readModelInput } from '../images.js';
import { openModel } from '../load-model.js';
import { UsageError } from '../usage-error.js';

export const decomposeUsage = `crp decompose --model M --image IMG --class C --layer L --concept K [options]

Decomposes concept K of layer L for class C in one image into its sub-concepts in the layer below, recursively
(@crp/attribution decompose), and writes the attribution graph as JSON, SVG and Mermaid.

  --model PATH        TF.js model (model.json or its directory) or a torchvision VGG (.safetensors)
  --image FILE        PNG or JPEG (resized to the model's input)
  --class C           class index
  --layer L           layer of the concept (see crp layers)
  --concept K         channel of that layer
  --depth N           levels (default 2)
  --width N           sub-concepts per node (default 3)
  --input-size N      input size of a PyTorch model (.pth/.safetensors): N or HxW (default 224)
  --normalize NAME    imagenet: (x - mean) / std after scaling pixels to [0, 1]
  --composite NAME    LRP composite (default epsilon_plus_flat)
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
      model: { type: 'string' },
      image: { type: 'string' },
      class: { type: 'string' },
      layer: { type: 'string' },
      concept: { type: 'string' },
      depth: { type: 'string', default: '2' },
      width: { type: 'string', default: '3' },
      normalize: { type: 'string' },
      'input-size': { type: 'string' },
      composite: { type: 'string', default: 'epsilon_plus_flat' },
      out: { type: 'string', default: join('out', 'graph.json') },
      svg: { type: 'string' },
      mermaid: { type: 'string' },
    },
  });
  const modelPath = required('model', values.model);
  const image = required('image', values.image);
  const target = required('class', intArg('class', values.class));
  const layer = required('layer', values.layer);
  const concept = required('concept', intArg('concept', values.concept));
  const depth = intArg('depth', values.depth, 1)!;
  const width = intArg('width', values.width, 1)!;
  const normalize = values.normalize === undefined ? undefined : NORMALIZATIONS[values.normalize];
  if (values.normalize !== undefined && normalize === undefined) {
    throw new UsageError(
      `unknown --normalize '${values.normalize}'; valid: ${Object.keys(NORMALIZATIONS).join(', ')}`,
    );
  }
  const composite = compositeByName(values.composite!, { low: 0, high: 1 });
  const model = await openModel(modelPath, inputSizeArg(values['input-size']));
  const crp = new CondAttribution(model, { composite });
  try {
    const input = await readModelInput(image, crp.attributor.graph.inputShape, normalize);
    let graph: AttributionGraph;
    try {
      graph = decomposeConcept(crp, input.tensor, { target, layer, concept, depth, width });
    } finally {
      input.tensor.dispose();
    }
    const out = values.out!;
    const svgFile = values.svg ?? `${out.replace(/\.json$/i, '')}.svg`;
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
