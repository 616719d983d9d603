import { CrpError } from '@crp/common';
import { transformerLayers } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The shape of a Vision Transformer (Dosovitskiy et al. 2021), in torchvision's names. */
export interface VitConfig {
  /** Input height and width in pixels (a number: square). */
  imageSize: number | [number, number];
  patchSize: number;
  numLayers: number;
  numHeads: number;
  hiddenDim: number;
  mlpDim: number;
  /** Classes of the head; default 1000. */
  numClasses?: number;
  /** Input channels; default 3. */
  channels?: number;
  /** Epsilon of every LayerNorm; default 1e-6 (torchvision's). */
  layerNormEpsilon?: number;
  /** Name of the TF.js model; default 'vit'. */
  name?: string;
}

/** torchvision's ViTs (vit_b_16, vit_b_32, vit_l_16, vit_l_32, vit_h_14), trained at 224 pixels. */
export const VIT_CONFIGS = {
  vit_b_16: { patchSize: 16, numLayers: 12, numHeads: 12, hiddenDim: 768, mlpDim: 3072 },
  vit_b_32: { patchSize: 32, numLayers: 12, numHeads: 12, hiddenDim: 768, mlpDim: 3072 },
  vit_l_16: { patchSize: 16, numLayers: 24, numHeads: 16, hiddenDim: 1024, mlpDim: 4096 },
  vit_l_32: { patchSize: 32, numLayers: 24, numHeads: 16, hiddenDim: 1024, mlpDim: 4096 },
  vit_h_14: { patchSize: 14, numLayers: 32, numHeads: 16, hiddenDim: 1280, mlpDim: 5120 },
} as const;

export type VitName = keyof typeof VIT_CONFIGS;

/** The layer names of block `i` (torchvision's prefix `encoder.layers.encoder_layer_i.`). */
export function vitBlockPrefix(i: number): string {
  return `encoder.layers.encoder_layer_${i}.`;
}

function imageSizeOf(c: VitConfig): [number, number] {
  return typeof c.imageSize === 'number' ? [c.imageSize, c.imageSize] : c.imageSize;
}

/** Tokens of the patch grid (without the class token): [rows, columns]. */
export function vitPatchGrid(c: VitConfig): [number, number] {
  const [h, w] = imageSizeOf(c);
  if (h % c.patchSize !== 0 || w % c.patchSize !== 0) {
    throw new CrpError(
      'invalid-shape',
      `image size ${h}x${w} is not a multiple of the patch size ${c.patchSize}; valid: multiples of ${c.patchSize}`,
    );
  }
  return [h / c.patchSize, w / c.patchSize];
}

/**
 * A Vision Transformer as a functional TF.js model whose every piece is a layer the @crp/lrp engine explains, named
 * as torchvision names the modules (plus the pieces torchvision computes inside `MultiheadAttention`):
 *
 * `conv_proj` (Conv2D, patch x patch, stride patch) -> `tokens` (Reshape to [T, D]) -> `class_token` (ClassToken)
 * -> `encoder.pos_embedding` (PositionEmbedding); per block `encoder.layers.encoder_layer_i.`: `ln_1`,
 * `self_attention.{q,k,v}_proj` (Dense on tokens), `self_attention.{q,k,v}_split` (Reshape [T, H, d]),
 * `self_attention.{q,k,v}_heads` (Permute to [H, T, d]), `self_attention.scores` (MatMul q k^T / sqrt(d)),
 * `self_attention.softmax`, `self_attention.context` (MatMul: the attention-weighted values [H, T, d], one head
 * per index of axis 1), `self_attention.context_tokens` (Permute), `self_attention.merge` (Reshape [T, D]),
 * `self_attention.out_proj`, `add_1`, `ln_2`, `mlp.0`, `mlp.1` (GELU), `mlp.3`, `add_2`; then `encoder.ln`,
 * `class_token_select` (SelectToken 0) and `heads.head` (logits). New weights are TF.js's defaults (Glorot-uniform
 * kernels, zero biases, LayerNorm scale 1) and zeros for the class token and the position embedding; set trained
 * ones with `setVitWeights` (of `@crp/models/internal`), or read a torchvision file with `importTorchVit`.
 */
export function vit(config: VitConfig): tfl.LayersModel {
  return buildVit(config, true);
}

/**
 * {@link vit}, with `initialize` false for a model whose weights are set right after (`importTorchVit`): kernels
 * start as zeros instead of TF.js's random initialisers, whose truncated normals took about half of the CPU time
 * of loading a vit_b_16 .pth (4.5 of 10 s) for values that are overwritten.
 */
export function buildVit(config: VitConfig, initialize: boolean): tfl.LayersModel {
  const c = config;
  const kernel = initialize ? {} : { kernelInitializer: 'zeros' as const };
  const [rows, cols] = vitPatchGrid(c);
  const [h, w] = imageSizeOf(c);
  const d = c.hiddenDim;
  if (d % c.numHeads !== 0) {
    throw new CrpError('invalid-argument', `hiddenDim ${d} is not divisible by numHeads ${c.numHeads}`);
  }
  const dh = d / c.numHeads;
  const tokens = rows * cols + 1;
  const eps = c.layerNormEpsilon ?? 1e-6;
  const input = tfl.input({ shape: [h, w, c.channels ?? 3], name: 'input' });
  let x = tfl.layers
    .conv2d({
      filters: d,
      kernelSize: c.patchSize,
      strides: c.patchSize,
      padding: 'valid',
      name: 'conv_proj',
      ...kernel,
    })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.reshape({ targetShape: [rows * cols, d], name: 'tokens' }).apply(x) as tfl.SymbolicTensor;
  x = transformerLayers.classToken({ name: 'class_token' }).apply(x) as tfl.SymbolicTensor;
  x = transformerLayers.positionEmbedding({ name: 'encoder.pos_embedding' }).apply(x) as tfl.SymbolicTensor;
  const ln = (name: string, t: tfl.SymbolicTensor) =>
    tfl.layers.layerNormalization({ axis: -1, epsilon: eps, name }).apply(t) as tfl.SymbolicTensor;
  const dense = (units: number, name: string, t: tfl.SymbolicTensor) =>
    tfl.layers.dense({ units, name, ...kernel }).apply(t) as tfl.SymbolicTensor;
  for (let i = 0; i < c.numLayers; i++) {
    const b = vitBlockPrefix(i);
    const a = `${b}self_attention.`;
    const y = ln(`${b}ln_1`, x);
    const heads = (which: 'q' | 'k' | 'v') => {
      const t = dense(d, `${a}${which}_proj`, y);
      const split = tfl.layers.reshape({ targetShape: [tokens, c.numHeads, dh], name: `${a}${which}_split` });
      const perm = tfl.layers.permute({ dims: [2, 1, 3], name: `${a}${which}_heads` });
      return perm.apply(split.apply(t)) as tfl.SymbolicTensor;
    };
    const [q, k, v] = [heads('q'), heads('k'), heads('v')];
    const scores = transformerLayers
      .matMul({ transposeB: true, scale: 1 / Math.sqrt(dh), name: `${a}scores` })
      .apply([q, k]) as tfl.SymbolicTensor;
    const attention = tfl.layers
      .softmax({ axis: -1, name: `${a}softmax` })
      .apply(scores) as tfl.SymbolicTensor;
    let context = transformerLayers
      .matMul({ name: `${a}context` })
      .apply([attention, v]) as tfl.SymbolicTensor;
    context = tfl.layers
      .permute({ dims: [2, 1, 3], name: `${a}context_tokens` })
      .apply(context) as tfl.SymbolicTensor;
    context = tfl.layers
      .reshape({ targetShape: [tokens, d], name: `${a}merge` })
      .apply(context) as tfl.SymbolicTensor;
    const attended = dense(d, `${a}out_proj`, context);
    x = tfl.layers.add({ name: `${b}add_1` }).apply([x, attended]) as tfl.SymbolicTensor;
    let m = dense(c.mlpDim, `${b}mlp.0`, ln(`${b}ln_2`, x));
    m = tfl.layers.activation({ activation: 'gelu', name: `${b}mlp.1` }).apply(m) as tfl.SymbolicTensor;
    m = dense(d, `${b}mlp.3`, m);
    x = tfl.layers.add({ name: `${b}add_2` }).apply([x, m]) as tfl.SymbolicTensor;
  }
  x = ln('encoder.ln', x);
  x = transformerLayers.selectToken({ index: 0, name: 'class_token_select' }).apply(x) as tfl.SymbolicTensor;
  const logits = dense(c.numClasses ?? 1000, 'heads.head', x);
  return tfl.model({ inputs: input, outputs: logits, name: c.name ?? 'vit' });
}

/**
 * Where each torchvision parameter goes in a {@link vit} model: [layer name, weight index] by parameter name, with
 * `in_proj_weight`/`in_proj_bias` already split into `self_attention.{q,k,v}_proj.{weight,bias}`. Values are in
 * TF.js layouts (conv [kh, kw, in, out], dense [in, out]).
 */
export function vitParameterSlots(config: VitConfig): Map<string, [string, number]> {
  const slots = new Map<string, [string, number]>([
    ['conv_proj.weight', ['conv_proj', 0]],
    ['conv_proj.bias', ['conv_proj', 1]],
    ['class_token', ['class_token', 0]],
    ['encoder.pos_embedding', ['encoder.pos_embedding', 0]],
    ['encoder.ln.weight', ['encoder.ln', 0]],
    ['encoder.ln.bias', ['encoder.ln', 1]],
    ['heads.head.weight', ['heads.head', 0]],
    ['heads.head.bias', ['heads.head', 1]],
  ]);
  for (let i = 0; i < config.numLayers; i++) {
    const b = vitBlockPrefix(i);
    for (const layer of [
      'ln_1',
      'self_attention.q_proj',
      'self_attention.k_proj',
      'self_attention.v_proj',
      'self_attention.out_proj',
      'ln_2',
      'mlp.0',
      'mlp.3',
    ]) {
      slots.set(`${b}${layer}.weight`, [`${b}${layer}`, 0]);
      slots.set(`${b}${layer}.bias`, [`${b}${layer}`, 1]);
    }
  }
  return slots;
}

/**
 * Sets the weights of a {@link vit} model from parameters in TF.js layouts keyed as {@link vitParameterSlots}
 * (`get(name)` returns the values; checked against the layer's weight shape). The values are copied; the model
 * owns its weights.
 */
export function setVitWeights(
  model: tfl.LayersModel,
  config: VitConfig,
  get: (name: string, shape: readonly number[]) => Float32Array,
): void {
  const byLayer = new Map<string, tf.Tensor[]>();
  try {
    for (const [name, [layerName, slot]] of vitParameterSlots(config)) {
      const layer = model.getLayer(layerName);
      let list = byLayer.get(layerName);
      if (list === undefined) {
        list = [];
        byLayer.set(layerName, list);
      }
      const shape = layer.getWeights()[slot]!.shape;
      const values = get(name, shape);
      const size = shape.reduce((a, s) => a * s, 1);
      if (values.length !== size) {
        throw new CrpError(
          'invalid-shape',
          `parameter '${name}' has ${values.length} values; layer '${layerName}' needs [${shape.join(', ')}] (${size})`,
        );
      }
      list[slot] = tf.tensor(values, shape);
    }
    for (const [layerName, weights] of byLayer) model.getLayer(layerName).setWeights(weights);
  } finally {
    for (const list of byLayer.values()) for (const t of list) t?.dispose();
  }
}

/**
 * Relevance per patch from relevance per token: [rows, tokens, D] (a ViT layer's output, e.g. `encoder.pos_embedding`
 * or a block's `add_2`) summed over the features, the class token dropped, laid out on the patch grid: [rows,
 * gridRows, gridCols]. With `upsample`, each patch becomes patchSize x patchSize pixels ([rows, H, W], for display
 * over the image). **The caller owns the result.**
 */
export function tokenHeatmap(
  relevance: tf.Tensor,
  config: VitConfig,
  options: { upsample?: boolean } = {},
): tf.Tensor3D {
  const [gh, gw] = vitPatchGrid(config);
  if (relevance.rank !== 3 || relevance.shape[1] !== gh * gw + 1) {
    throw new CrpError(
      'invalid-shape',
      `token relevance must be [rows, ${gh * gw + 1}, features] (the class token and ${gh}x${gw} patches), got [${relevance.shape.join(', ')}]`,
    );
  }
  return tf.tidy(() => {
    const rows = relevance.shape[0]!;
    const perToken = tf.sum(tf.slice(relevance, [0, 1, 0], [-1, -1, -1]), 2);
    const grid = tf.reshape(perToken, [rows, gh, gw]) as tf.Tensor3D;
    if (options.upsample !== true) return grid;
    const p = config.patchSize;
    // nearest: every pixel of a patch shows the patch's relevance
    const tiled = tf.tile(tf.reshape(grid, [rows, gh, 1, gw, 1]), [1, 1, p, 1, p]);
    return tf.reshape(tiled, [rows, gh * p, gw * p]) as tf.Tensor3D;
  });
}
