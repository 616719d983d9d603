import { writeFile } from 'node:fs/promises';
import { mulberry32 } from '@crp/common';
import { encodeTorchStateDict, type TorchTensor } from '@crp/models';

/** The shape of a small torchvision-layout ViT: 48x48 images in 2x2 patches of 24 pixels. */
export const TINY_VIT = {
  imageSize: 48,
  patchSize: 24,
  numLayers: 1,
  numHeads: 2,
  hiddenDim: 16,
  mlpDim: 32,
  numClasses: 2,
} as const;

/**
 * A state dict with torchvision's VisionTransformer keys and shapes (what `torch.save(vit.state_dict())` writes for
 * {@link TINY_VIT}), seeded uniform weights in [-scale, scale] per tensor (LayerNorm scales around 1), written by
 * the repository's .pth writer. None of torchvision's configurations, so it is read with `--heads 2`.
 */
export async function writeTinyVit(path: string, seed = 7): Promise<void> {
  const c = TINY_VIT;
  const d = c.hiddenDim;
  const tokens = (c.imageSize / c.patchSize) ** 2 + 1;
  const random = mulberry32(seed);
  const t = (shape: number[], scale: number, offset = 0): TorchTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { shape, data: Float32Array.from({ length: n }, () => offset + scale * (2 * random() - 1)) };
  };
  const sd = new Map<string, TorchTensor>();
  sd.set('class_token', t([1, 1, d], 0.5));
  sd.set('conv_proj.weight', t([d, 3, c.patchSize, c.patchSize], 0.03));
  sd.set('conv_proj.bias', t([d], 0.1));
  sd.set('encoder.pos_embedding', t([1, tokens, d], 0.5));
  for (let i = 0; i < c.numLayers; i++) {
    const b = `encoder.layers.encoder_layer_${i}.`;
    sd.set(`${b}ln_1.weight`, t([d], 0.2, 1));
    sd.set(`${b}ln_1.bias`, t([d], 0.1));
    sd.set(`${b}self_attention.in_proj_weight`, t([3 * d, d], 0.4));
    sd.set(`${b}self_attention.in_proj_bias`, t([3 * d], 0.1));
    sd.set(`${b}self_attention.out_proj.weight`, t([d, d], 0.4));
    sd.set(`${b}self_attention.out_proj.bias`, t([d], 0.1));
    sd.set(`${b}ln_2.weight`, t([d], 0.2, 1));
    sd.set(`${b}ln_2.bias`, t([d], 0.1));
    sd.set(`${b}mlp.0.weight`, t([c.mlpDim, d], 0.4));
    sd.set(`${b}mlp.0.bias`, t([c.mlpDim], 0.1));
    sd.set(`${b}mlp.3.weight`, t([d, c.mlpDim], 0.3));
    sd.set(`${b}mlp.3.bias`, t([d], 0.1));
  }
  sd.set('encoder.ln.weight', t([d], 0.2, 1));
  sd.set('encoder.ln.bias', t([d], 0.1));
  sd.set('heads.head.weight', t([c.numClasses, d], 0.4));
  sd.set('heads.head.bias', t([c.numClasses], 0.05));
  await writeFile(path, encodeTorchStateDict(sd));
}
