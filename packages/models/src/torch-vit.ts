import { CrpError } from '@crp/common';
import type * as tfl from '@tensorflow/tfjs-layers';
import { parseStateDict, type StateDict } from './state-dict.js';
import { buildVit, setVitWeights, VIT_CONFIGS, type VitConfig, vitBlockPrefix } from './vit.js';

/** Options of {@link importTorchVit}. */
export interface TorchVitOptions {
  /**
   * Input height and width in pixels (a number: square). Default: the size the position embeddings were trained
   * for (224 for torchvision's ViTs), square. Another size must give the same number of patches; the position
   * embeddings are never interpolated (as torchvision, which refuses other sizes).
   */
  imageSize?: number | [number, number];
  /** Attention heads: not stored in the weights; read from torchvision's configuration when the shapes are
   * one of its ViTs, else required. */
  numHeads?: number;
  /** Epsilon of the LayerNorms; default 1e-6 (torchvision's). */
  layerNormEpsilon?: number;
  /** Name of the TF.js model; default the torchvision name when the shapes are one (`'vit_b_16'`), else `'vit'`. */
  name?: string;
}

/** The structure of a torchvision ViT as read from its state dict by {@link torchVitLayout}. */
export interface TorchVitLayout {
  /** The key prefix before `conv_proj.` (`''`, `'module.'`, ...). */
  prefix: string;
  /** `'vit_b_16'` ... when the shapes are those of a torchvision ViT. */
  torchvision: string | undefined;
  patchSize: number;
  channels: number;
  hiddenDim: number;
  mlpDim: number;
  numLayers: number;
  numClasses: number;
  /** Tokens of the position embedding (patches + the class token). */
  tokens: number;
}

const SUPPORTED =
  "valid: a state dict of torchvision's VisionTransformer (vit_b_16, vit_b_32, vit_l_16, vit_l_32, vit_h_14 or the same structure at other sizes): conv_proj, class_token, encoder.pos_embedding, encoder.layers.encoder_layer_N.{ln_1, self_attention.in_proj_weight/in_proj_bias, self_attention.out_proj, ln_2, mlp.0, mlp.3}, encoder.ln, heads.head";

/** The parameters of one encoder block that the engine knows (torchvision's EncoderBlock, packed in-projection). */
const BLOCK_KEYS = [
  'ln_1.weight',
  'ln_1.bias',
  'self_attention.in_proj_weight',
  'self_attention.in_proj_bias',
  'self_attention.out_proj.weight',
  'self_attention.out_proj.bias',
  'ln_2.weight',
  'ln_2.bias',
  'mlp.0.weight',
  'mlp.0.bias',
  'mlp.3.weight',
  'mlp.3.bias',
];
const TOP_KEYS = [
  'class_token',
  'conv_proj.weight',
  'conv_proj.bias',
  'encoder.pos_embedding',
  'encoder.ln.weight',
  'encoder.ln.bias',
  'heads.head.weight',
  'heads.head.bias',
];

function unsupported(message: string): never {
  throw new CrpError('unsupported-model', message);
}

/**
 * Reads the structure of a torchvision ViT from tensor names and shapes. Every tensor must be one the engine
 * explains: a parameter of another attention variant (relative position bias, separate q/k/v projections, a
 * pre-logits layer) is refused by name, never skipped.
 *
 * @throws CrpError `unsupported-model` naming the first tensor that does not fit, with what is supported
 */
export function torchVitLayout(sd: StateDict): TorchVitLayout {
  const anchor = sd.names.find((n) => /(^|\.)conv_proj\.weight$/.test(n));
  if (anchor === undefined) {
    unsupported(
      `no torchvision ViT: no 'conv_proj.weight' tensor (${sd.names.length} tensors, e.g. ${sd.names.slice(0, 3).join(', ')}). ${SUPPORTED}`,
    );
  }
  const prefix = anchor.slice(0, anchor.length - 'conv_proj.weight'.length);
  const known = new Set(TOP_KEYS.map((k) => prefix + k));
  let numLayers = 0;
  while (sd.has(`${prefix}${vitBlockPrefix(numLayers)}ln_1.weight`)) numLayers++;
  for (let i = 0; i < numLayers; i++)
    for (const k of BLOCK_KEYS) known.add(`${prefix}${vitBlockPrefix(i)}${k}`);
  for (const name of sd.names) {
    if (!known.has(name)) {
      const block = /encoder_layer_(\d+)\.(.*)$/.exec(name);
      unsupported(
        block !== null
          ? `tensor '${name}' of encoder block ${block[1]} is not part of torchvision's EncoderBlock (${block[2]}); the engine explains multi-head self-attention with a packed in_proj_weight, LayerNorm and a GELU MLP only, and approximates nothing else. ${SUPPORTED}`
          : `tensor '${name}' is not part of a torchvision ViT that the engine explains. ${SUPPORTED}`,
      );
    }
  }
  for (const k of known) {
    if (!sd.has(k)) unsupported(`tensor '${k}' is missing. ${SUPPORTED}`);
  }
  const shape = (k: string) => sd.entry(prefix + k).shape;
  const [hiddenDim, channels, patchSize, patchWidth] = shape('conv_proj.weight') as [
    number,
    number,
    number,
    number,
  ];
  if (patchSize !== patchWidth)
    unsupported(`conv_proj has a ${patchSize}x${patchWidth} kernel; square patches are supported`);
  const tokens = shape('encoder.pos_embedding')[1]!;
  const mlpDim = numLayers > 0 ? shape(`${vitBlockPrefix(0)}mlp.0.weight`)[0]! : 0;
  const numClasses = shape('heads.head.weight')[0]!;
  const torchvision = Object.entries(VIT_CONFIGS).find(
    ([, c]) =>
      c.patchSize === patchSize &&
      c.hiddenDim === hiddenDim &&
      c.numLayers === numLayers &&
      c.mlpDim === mlpDim,
  )?.[0];
  return { prefix, torchvision, patchSize, channels, hiddenDim, mlpDim, numLayers, numClasses, tokens };
}

/** The image size the position embeddings were trained for (square), or the given one if it gives as many patches. */
function imageSizeFor(
  layout: TorchVitLayout,
  given: number | [number, number] | undefined,
  name: string,
): [number, number] {
  const patches = layout.tokens - 1;
  const side = Math.round(Math.sqrt(patches));
  const trained = side * layout.patchSize;
  if (given === undefined) {
    if (side * side !== patches) {
      unsupported(
        `${name}: ${patches} position embeddings are no square grid of patches; give options.imageSize`,
      );
    }
    return [trained, trained];
  }
  const [h, w] = typeof given === 'number' ? [given, given] : given;
  const p = layout.patchSize;
  if (h % p !== 0 || w % p !== 0 || (h / p) * (w / p) !== patches) {
    throw new CrpError(
      'invalid-shape',
      `${name} was trained for ${patches} patches of ${p}x${p} pixels (${trained}x${trained} images); ${h}x${w} gives ${h % p === 0 && w % p === 0 ? (h / p) * (w / p) : 'no whole number of'} patches. Position embeddings are not interpolated; use an image size with ${patches} patches, e.g. ${trained}`,
    );
  }
  return [h, w];
}

/** Rows of a [rows, cols] row-major matrix, transposed to [cols, rows]. */
function transpose2d(
  values: Float32Array,
  rows: number,
  cols: number,
  offset = 0,
  count = rows,
): Float32Array {
  const out = new Float32Array(count * cols);
  for (let r = 0; r < count; r++)
    for (let c = 0; c < cols; c++) out[c * count + r] = values[(offset + r) * cols + c]!;
  return out;
}

/**
 * A TF.js {@link vit} model with a torchvision ViT's weights, named as in PyTorch (`conv_proj`,
 * `encoder.layers.encoder_layer_0.ln_1`, ..., `heads.head`; the in-projection split into
 * `self_attention.{q,k,v}_proj`). Its logits equal PyTorch's (up to float rounding).
 *
 * @returns a new model that the caller owns
 * @throws CrpError `unsupported-model` ({@link torchVitLayout}; also when the heads cannot be inferred),
 *   `invalid-shape` for an image size that does not match the position embeddings
 */
export function torchVitFromStateDict(sd: StateDict, options: TorchVitOptions = {}): tfl.LayersModel {
  const layout = torchVitLayout(sd);
  const name = options.name ?? layout.torchvision ?? 'vit';
  const numHeads =
    options.numHeads ??
    (layout.torchvision ? VIT_CONFIGS[layout.torchvision as keyof typeof VIT_CONFIGS].numHeads : undefined);
  if (numHeads === undefined) {
    unsupported(
      `the ViT (width ${layout.hiddenDim}, ${layout.numLayers} blocks) is none of torchvision's configurations, and the number of attention heads is not stored in the weights; give options.numHeads`,
    );
  }
  const config: VitConfig = {
    imageSize: imageSizeFor(layout, options.imageSize, name),
    patchSize: layout.patchSize,
    numLayers: layout.numLayers,
    numHeads,
    hiddenDim: layout.hiddenDim,
    mlpDim: layout.mlpDim,
    numClasses: layout.numClasses,
    channels: layout.channels,
    layerNormEpsilon: options.layerNormEpsilon ?? 1e-6,
    name,
  };
  // the weights are set below: no random initialisation first
  const model = buildVit(config, false);
  const d = layout.hiddenDim;
  const p = layout.patchSize;
  const c = layout.channels;
  const read = (k: string) => sd.float32(layout.prefix + k, { copy: false });
  try {
    setVitWeights(model, config, (key) => {
      const packed = /^(.*)self_attention\.([qkv])_proj\.(weight|bias)$/.exec(key);
      if (packed !== null) {
        // in_proj_weight [3D, D] holds q, k, v one after the other; each becomes a [D, D] Dense kernel
        const part = 'qkv'.indexOf(packed[2]!);
        if (packed[3] === 'bias')
          return read(`${packed[1]}self_attention.in_proj_bias`).slice(part * d, (part + 1) * d);
        return transpose2d(read(`${packed[1]}self_attention.in_proj_weight`), 3 * d, d, part * d, d);
      }
      if (key === 'conv_proj.weight') {
        // [D, C, p, p] -> [p, p, C, D]
        const w = read(key);
        const out = new Float32Array(w.length);
        for (let o = 0; o < d; o++)
          for (let i = 0; i < c; i++)
            for (let y = 0; y < p; y++)
              for (let x = 0; x < p; x++)
                out[((y * p + x) * c + i) * d + o] = w[((o * c + i) * p + y) * p + x]!;
        return out;
      }
      const entry = sd.entry(layout.prefix + key);
      if (entry.shape.length === 2 && key.endsWith('.weight')) {
        // Linear [out, in] -> Dense [in, out]
        return transpose2d(read(key), entry.shape[0]!, entry.shape[1]!);
      }
      return read(key);
    });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * Reads a torchvision ViT into a TF.js model from the bytes of a `.pth`/`.pt` file of `torch.save` (a
 * `state_dict`) or a safetensors file, or from a parsed {@link StateDict}. From a path: `readTorchVit` of
 * `@crp/models/node`.
 *
 * ```ts
 * // Python: torch.save(torchvision.models.vit_b_16(weights='DEFAULT').state_dict(), 'vit_b_16.pth')
 * const model = await importTorchVit(bytesOfTheFile);
 * model.getLayer('encoder.layers.encoder_layer_11.mlp.1'); // GELU output: 3072 MLP neurons per token
 * ```
 *
 * @returns a new model that the caller owns
 */
export async function importTorchVit(
  source: Uint8Array | StateDict,
  options: TorchVitOptions = {},
): Promise<tfl.LayersModel> {
  const sd = source instanceof Uint8Array ? parseStateDict(source) : source;
  return torchVitFromStateDict(sd, options);
}
