import { CrpError } from '@crp/common';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  ConversionContext,
  nodeLabel,
  type OnnxShapeLink,
  type OnnxValueLink,
  type OnnxWeightLink,
  onnxShape,
  refuse,
} from './onnx-ops/context.js';
import { DYNAMIC_BATCH, GraphReader, ONNX_FOLDED_OPS } from './onnx-ops/graph-values.js';
import { ONNX_CONVERTERS } from './onnx-ops/registry.js';
import { isTransformerGraph, ONNX_VIT_OPS, vitFromOnnxGraph } from './onnx-ops/vit.js';
import {
  type OnnxDim,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxValueInfo,
  parseOnnxModel,
} from './onnx-proto.js';

/** The ONNX operators {@link importOnnx} converts in a CNN (default domain, opsets 11-20), each node on its own.
 * Anything else is refused. A Vision Transformer is read by patterns instead: {@link ONNX_VIT_SUPPORTED_OPS}. */
export const ONNX_SUPPORTED_OPS: readonly string[] = Object.keys(ONNX_CONVERTERS);
const converters = new Map(Object.entries(ONNX_CONVERTERS));

/** The ONNX operators {@link importOnnx} reads in a Vision Transformer (a graph with a MatMul of two activations),
 * only inside torchvision's patterns (patch embedding, LayerNorm, multi-head self-attention, GELU, MLP, class-token
 * head); the shape computations torch writes around them are folded. A node outside the patterns is refused by
 * name, with this list. */
export const ONNX_VIT_SUPPORTED_OPS: readonly string[] = ONNX_VIT_OPS;

/** The ONNX opsets (default domain) {@link importOnnx} reads. 19 and 20 changed no supported operator in a way
 * the importer would misread: Pad's new 'wrap' mode and AveragePool's dilations are refused, `Gelu` (20) is read
 * in a ViT. */
export const ONNX_OPSETS = { min: 11, max: 20 } as const;

export interface OnnxImportOptions {
  /** [height, width] for an input whose spatial size is dynamic (`dim_param`), e.g. from `dynamic_axes`. A
   * dynamic batch size needs nothing. The CLI's `--input-size`. */
  inputSize?: number | readonly [number, number];
  /** The bytes of a file that holds tensors outside the model (ONNX external data, `location` relative to the
   * model file), or undefined when it is not available. `readOnnx` of `@crp/models/node` reads them from disk. */
  externalData?: (location: string) => Uint8Array | undefined;
  /** Name of the returned model (default: the ONNX graph's name). */
  name?: string;
}

function unknownOp(node: OnnxNode): never {
  const vitOnly = node.domain === '' && ONNX_VIT_SUPPORTED_OPS.includes(node.opType);
  throw new CrpError(
    'unsupported-layer',
    `ONNX node ${nodeLabel(node)}${node.domain === '' ? '' : ` of domain '${node.domain}'`}: operator ${node.opType} is not supported${vitOnly ? " in a CNN (it is read only inside torchvision's Vision Transformer, a graph with a MatMul of two activations)" : ''}. Supported operators: ${ONNX_SUPPORTED_OPS.join(', ')}`,
    { details: { opType: node.opType, node: node.name, supported: [...ONNX_SUPPORTED_OPS] } },
  );
}

function checkOpset(onnx: OnnxModel): void {
  const opset = onnx.opsets.get('');
  if (opset === undefined)
    throw new CrpError(
      'unsupported-format',
      `the ONNX model imports no opset of the default domain ('' or 'ai.onnx'), only of ${[...onnx.opsets.keys()].map((d) => `'${d}'`).join(', ')}; supported: opsets ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max} of the default domain (re-export with torch.onnx.export(..., opset_version=17))`,
      { details: { opsets: Object.fromEntries(onnx.opsets) } },
    );
  if (opset < ONNX_OPSETS.min || opset > ONNX_OPSETS.max) {
    throw new CrpError(
      'unsupported-format',
      `ONNX opset ${opset} is not supported; supported: ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max} (re-export with torch.onnx.export(..., opset_version=17))`,
      { details: { opset } },
    );
  }
}

const LAYOUT_NEUTRAL = new Set(['Identity', 'Add', 'Sub', 'Mul', 'Div', 'Relu', 'Clip', 'Cast']);

/**
 * Whether a 4-D graph input is channels-last, as a TF model converted by tf2onnx takes it: every path from it
 * (through element-wise operators such as a `Rescaling`) meets a Transpose with perm [0, 3, 1, 2] before any
 * operator that reads a layout. Nothing is guessed from the sizes.
 */
function isChannelsLastInput(graph: OnnxGraph, name: string): boolean {
  let sawTranspose = false;
  const seen = new Set<string>();
  const visit = (value: string): boolean =>
    graph.nodes
      .filter((n) => n.inputs.includes(value))
      .every((n) => {
        if (n.opType === 'Transpose') {
          const perm = n.attributes.get('perm')?.ints ?? [];
          sawTranspose = perm.join() === '0,3,1,2';
          return sawTranspose;
        }
        if (!LAYOUT_NEUTRAL.has(n.opType) || seen.has(n.outputs[0]!)) return LAYOUT_NEUTRAL.has(n.opType);
        seen.add(n.outputs[0]!);
        return visit(n.outputs[0]!);
      });
  return visit(name) && sawTranspose;
}

/** The Keras input of the graph's one image (or vector) input, its dynamic sizes fixed by `inputSize`. An image
 * input is [N, C, H, W], or [N, H, W, C] for a channels-last one (see {@link isChannelsLastInput}). */
function modelInput(
  input: OnnxValueInfo,
  cx: ConversionContext,
  inputSize: OnnxImportOptions['inputSize'],
  channelsLast: boolean,
) {
  const dims: OnnxDim[] = input.shape ?? [];
  const size =
    inputSize === undefined ? undefined : typeof inputSize === 'number' ? [inputSize, inputSize] : inputSize;
  const fixed = (d: OnnxDim, i: number, what: string): number => {
    if (typeof d === 'number' && d > 0) {
      if (size !== undefined && i >= 2 && d !== size[i - 2]) {
        throw new CrpError(
          'invalid-argument',
          `inputSize ${size[0]}x${size[1]} does not fit the ONNX input '${input.name}', whose ${what} is fixed at ${d}`,
        );
      }
      return d;
    }
    if (size !== undefined && i >= 2) return size[i - 2]!;
    throw new CrpError(
      'invalid-shape',
      `the ONNX input '${input.name}' has a dynamic ${what} (${d === null ? 'unknown' : `'${d}'`}) in its shape [${dims.map(String).join(', ')}], which the engine cannot fix by itself; give the input size: inputSize: [height, width] (crp: --input-size HxW)`,
      { details: { input: input.name, shape: dims } },
    );
  };
  if (dims.length === 4) {
    // fixed() numbers the axes as NCHW: 1 channels, 2 height, 3 width
    const [ci, hi, wi] = channelsLast ? [3, 1, 2] : [1, 2, 3];
    const c = fixed(dims[ci]!, 1, 'channel count');
    const h = fixed(dims[hi]!, 2, 'height');
    const w = fixed(dims[wi]!, 3, 'width');
    return tfl.input({ shape: [h, w, c], name: cx.takeName('input') });
  }
  if (dims.length === 2)
    return tfl.input({ shape: [fixed(dims[1]!, 1, 'feature count')], name: cx.takeName('input') });
  throw new CrpError(
    'unsupported-model',
    `the ONNX input '${input.name}' has shape [${dims.map(String).join(', ')}]; supported: images [N, C, H, W] or vectors [N, F]`,
  );
}

/** A transformer graph (a product of two activations): a torchvision ViT, recognised pattern by pattern by
 * `vitFromOnnxGraph`. The batch size only fixes the shapes that torch's shape computations read (2 when dynamic). */
function vitFromOnnx(
  onnx: OnnxModel,
  input: OnnxValueInfo,
  cx: ConversionContext,
  options: OnnxImportOptions,
  name: string,
): tfl.LayersModel {
  const dims = input.shape ?? [];
  if (dims.length !== 4)
    throw new CrpError(
      'unsupported-model',
      `the ONNX input '${input.name}' of a transformer has shape [${dims.map(String).join(', ')}]; supported: images [N, C, H, W]`,
    );
  const fixed = (d: OnnxDim) => (typeof d === 'number' && d > 0 ? d : undefined);
  const size =
    options.inputSize === undefined
      ? undefined
      : typeof options.inputSize === 'number'
        ? [options.inputSize, options.inputSize]
        : options.inputSize;
  const hw = [2, 3].map((a) => {
    const d = fixed(dims[a]!);
    const given = size?.[a - 2];
    if (d !== undefined && given !== undefined && d !== given)
      throw new CrpError(
        'invalid-argument',
        `inputSize ${size![0]}x${size![1]} does not fit the ONNX input '${input.name}', whose ${a === 2 ? 'height' : 'width'} is fixed at ${d}`,
      );
    const v = d ?? given;
    if (v === undefined)
      throw new CrpError(
        'invalid-shape',
        `the ONNX input '${input.name}' has a dynamic ${a === 2 ? 'height' : 'width'} in its shape [${dims.map(String).join(', ')}]; give the input size: inputSize: [height, width] (crp: --input-size HxW)`,
        { details: { input: input.name, shape: dims } },
      );
    return v;
  }) as [number, number];
  const channels = fixed(dims[1]!);
  if (channels === undefined)
    throw new CrpError('invalid-shape', `the ONNX input '${input.name}' has a dynamic channel count`);
  return vitFromOnnxGraph(
    onnx.graph,
    (t) => cx.constOf(t),
    { name: input.name, batch: fixed(dims[0]!) ?? 2, channels, size: hw },
    name,
    onnx.opsets.get('') ?? 0,
  );
}

/**
 * Imports an ONNX model of a CNN (from `torch.onnx.export`, `tf2onnx`, ...; opsets 11-20) as a functional
 * TF.js `LayersModel` of layers the LRP engine knows: NCHW becomes NHWC (conv kernels transposed, the rows of a
 * Gemm after a flatten permuted from (c, h, w) to (h, w, c)), asymmetric or non-'same' pads become
 * `ZeroPadding2D`, a product with a broadcast gate (squeeze-excitation) a `Multiply` whose first input is the
 * feature branch, `x * sigmoid(x)` the swish activation (SiLU). Layer names are PyTorch's module names where
 * the exporter kept them (initializer `features.0.weight` -> layer `features.0`, node
 * `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`), else the ONNX node names. Nothing is approximated: an
 * operator or attribute outside {@link ONNX_SUPPORTED_OPS} is refused by name.
 *
 * A graph with a product of two activations (attention) is read as torchvision's Vision Transformer instead,
 * pattern by pattern (patch embedding, LayerNorm, multi-head self-attention, GELU, head), into the same model as
 * `importTorchVit` builds from the `.pth`, with torchvision's layer names; a node outside those patterns is refused
 * by name.
 *
 * The model takes NHWC input [N, H, W, C] with the same preprocessing as the ONNX model (which takes NCHW) and
 * gives the same outputs.
 *
 * @returns a new model that the caller owns (`dispose()` it)
 * @throws CrpError `corrupt-file` for bytes that are not an ONNX model (truncated, damaged); `unsupported-format`
 *   for an opset outside 11-20; `unsupported-layer` for an unsupported operator or attribute (with the
 *   operator, the node and the supported list); `invalid-shape` for a dynamic spatial input size without
 *   `inputSize` or a ViT whose position embeddings do not fit the image size; `not-found` for external data that
 *   `externalData` does not provide
 */
export function importOnnx(source: Uint8Array | OnnxModel, options: OnnxImportOptions = {}): tfl.LayersModel {
  return importOnnxLinked(source, options).model;
}

/** What the ONNX writer needs to map a model back onto its source graph: where each weight layer's weights came
 * from, the Reshapes to constant targets, and the layer of every ONNX value (all empty for a ViT). */
export interface OnnxImportLinks {
  links: OnnxWeightLink[];
  shapes: OnnxShapeLink[];
  values: Map<string, OnnxValueLink>;
}

/** {@link importOnnx}, and the links of {@link OnnxImportLinks}. Internal: the ONNX writer's map back from layers
 * to initializers, shape constants and value shapes. */
export function importOnnxLinked(
  source: Uint8Array | OnnxModel,
  options: OnnxImportOptions = {},
): { model: tfl.LayersModel } & OnnxImportLinks {
  const onnx = source instanceof Uint8Array ? parseOnnxModel(source) : source;
  checkOpset(onnx);
  const g = onnx.graph;
  const cx = new ConversionContext(g, options.externalData);
  const initializerNames = new Set(g.initializers.map((t) => t.name));
  const realInputs = g.inputs.filter((i) => !initializerNames.has(i.name));
  if (realInputs.length !== 1 || g.outputs.length !== 1) {
    throw new CrpError(
      'unsupported-model',
      `the ONNX graph has ${realInputs.length} inputs and ${g.outputs.length} outputs; the toolkit explains models with one input and one output`,
    );
  }
  const input = realInputs[0]!;
  const name = (options.name ?? g.name).replace(/[^A-Za-z0-9_]/g, '_') || 'onnx_model';
  if (isTransformerGraph(g, (t) => cx.constOf(t)))
    return { model: vitFromOnnx(onnx, input, cx, options, name), links: [], shapes: [], values: new Map() };
  for (const t of g.initializers) cx.define(t.name, cx.constOf(t));
  const channelsLast = input.shape?.length === 4 && isChannelsLastInput(g, input.name);
  const inputTensor = modelInput(input, cx, options.inputSize, channelsLast);
  const batch = input.shape?.[0];
  cx.inputBatch = typeof batch === 'number' && batch > 0 ? batch : undefined;
  cx.define(input.name, { kind: 'tensor', sym: inputTensor, ...(channelsLast ? { nhwc: true } : {}) });

  // constants first: a converter that fuses a pattern (x * a + b) may need a Constant listed after its node
  const isConstant = (n: OnnxNode) => n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx');
  for (const node of g.nodes.filter(isConstant)) converters.get('Constant')!(node, cx);
  // shape computations (torch's `x.view(x.size(0), -1)`: Shape -> Gather -> Unsqueeze -> Concat -> a Reshape's
  // target) are folded to constants by the graph reader a ViT is read with, the batch size DYNAMIC_BATCH when the
  // input leaves it open
  const reader = new GraphReader(g, (t) => cx.constOf(t), cx.inputBatch === undefined);
  const shapeValues = new Set<string>();
  const isTensor = (name: string) => cx.lookup(name)?.kind === 'tensor';
  const isShapeComputation = (node: OnnxNode) =>
    (node.domain === '' || node.domain === 'ai.onnx') &&
    ONNX_FOLDED_OPS.includes(node.opType) &&
    (node.opType === 'Shape' || (node.inputs.some((i) => shapeValues.has(i)) && !node.inputs.some(isTensor)));
  for (const node of g.nodes) {
    if (cx.isSkipped(node) || isConstant(node)) continue;
    if (isShapeComputation(node)) {
      const x = node.opType === 'Shape' ? cx.get(node, node.inputs[0]) : undefined;
      if (x?.kind === 'tensor')
        reader.setAct(node.inputs[0]!, [cx.inputBatch ?? DYNAMIC_BATCH, ...onnxShape(x).slice(1)]);
      const c = reader.constant(node.outputs[0]!, node);
      cx.set(node, { kind: 'const', dims: c.dims, data: c.data });
      shapeValues.add(node.outputs[0]!);
      continue;
    }
    // the dynamic batch size may only become the first count of a Reshape's target (see linkTarget)
    node.inputs.forEach((i, k) => {
      const v = shapeValues.has(i) ? cx.lookup(i) : undefined;
      if (v?.kind === 'const' && v.data.some(Number.isNaN) && !(node.opType === 'Reshape' && k === 1))
        refuse(
          node,
          `reads the batch size (input '${i}', computed from the input's shape), which is dynamic; supported: the batch size as the first count of a Reshape's target, or an input with a fixed batch size`,
        );
    });
    const convert = node.domain === '' || node.domain === 'ai.onnx' ? converters.get(node.opType) : undefined;
    if (convert === undefined) unknownOp(node);
    convert(node, cx);
  }

  const out = cx.lookup(g.outputs[0]!.name);
  if (out === undefined || out.kind !== 'tensor') {
    throw new CrpError(
      'unsupported-model',
      `the ONNX output '${g.outputs[0]!.name}' is not computed from the input`,
    );
  }
  return {
    model: tfl.model({ inputs: inputTensor, outputs: out.sym, name }),
    links: cx.links,
    shapes: cx.shapeLinks,
    values: cx.valueLinks(),
  };
}
