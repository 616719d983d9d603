/**
 * An outside check of the small ViT's ONNX files (vendor/reference/vit/tiny_vit*.onnx): onnxruntime loads each
 * (it validates the graph, and knows opset 20, which Debian's onnx 1.12 checker does not) and its logits on the
 * cases' input are compared with PyTorch's. onnxruntime is no dependency of the repository; install it elsewhere:
 *
 *     mkdir /tmp/ort && (cd /tmp/ort && npm i onnxruntime-node@1.20.1 --ignore-scripts)
 *     node scripts/golden/onnx/check_vit_onnx_runtime.mjs /tmp/ort
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const ortDir = process.argv[2];
if (ortDir === undefined)
  throw new Error('usage: check_vit_onnx_runtime.mjs <folder where onnxruntime-node is installed>');
const ort = await import(pathToFileURL(createRequire(join(ortDir, 'x.js')).resolve('onnxruntime-node')).href);
const dir = join(import.meta.dirname, '..', '..', '..', 'vendor', 'reference', 'vit');
const g = JSON.parse(readFileSync(join(dir, 'cases', 'attn_lrp__tiny_vit.json'), 'utf8'));
const [n, h, w, c] = g.input.shape;
const nchw = new Float32Array(n * c * h * w);
for (let b = 0; b < n; b++)
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++)
        nchw[((b * c + k) * h + y) * w + x] = g.input.data[((b * h + y) * w + x) * c + k];
const scale = Math.max(...g.logits.data.map(Math.abs));
for (const f of readdirSync(dir).filter((name) => name.endsWith('.onnx'))) {
  const session = await ort.InferenceSession.create(join(dir, f));
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', nchw, [n, c, h, w]) };
  const rows = f.includes('folded') ? 1 : n; // the folded export has its batch fixed at 1
  if (rows === 1)
    feeds[session.inputNames[0]] = new ort.Tensor('float32', nchw.subarray(0, c * h * w), [1, c, h, w]);
  const out = (await session.run(feeds))[session.outputNames[0]].data;
  let worst = 0;
  for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - g.logits.data[i]));
  console.log(
    `${f}: onnxruntime loads it; max |logits - PyTorch's| / max |PyTorch's| = ${(worst / scale).toExponential(2)}`,
  );
}
