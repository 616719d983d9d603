/**
 * The `vit` cases also run through the model's ONNX exports (tiny_vit.onnx, .opset14.onnx, .folded.onnx,
 * .opset11/12/13.onnx, .gelu.onnx): a wrong weight in one export fails every case, at that export, though the JSON
 * model is right.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../src/backend.js';
import { defaultReferenceDir } from '../src/reference-dir.js';
import { runConformance } from '../src/run.js';

let dir: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'crp-vit-onnx-'));
  await cp(join(defaultReferenceDir(), 'vit'), join(dir, 'vit'), { recursive: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the vit cases through ONNX are not vacuous', () => {
  it.each(['opset14', 'opset11', 'gelu'])(
    'a head bias moved by 1 in the %s export fails every case there',
    async (variant) => {
      const file = join(dir, 'vit', `tiny_vit.${variant}.onnx`);
      const original = await readFile(file);
      const bytes = Buffer.from(original);
      const model = JSON.parse(await readFile(join(dir, 'vit', 'tiny_vit.json'), 'utf8'));
      // the initializer's raw float32 bytes, found by value, its first value moved by 1
      const bias = Buffer.from(new Float32Array(model.weights['heads.head.bias'].data).buffer);
      const at = bytes.indexOf(bias);
      expect(at).toBeGreaterThan(0);
      expect(bytes.indexOf(bias, at + 1)).toBe(-1);
      bytes.writeFloatLE(bytes.readFloatLE(at) + 1, at);
      await writeFile(file, bytes);
      try {
        const summary = await runConformance([dir], { kinds: ['vit'] });
        expect(summary.outcomes).toHaveLength(4);
        for (const o of summary.outcomes) {
          expect(o.passed, o.id).toBe(false);
          // the failures listed are this export's only: the JSON model and the other exports pass
          for (const failure of o.detail.split('; '))
            expect(failure, o.id).toMatch(new RegExp(`^onnx ${variant}: `));
        }
      } finally {
        await writeFile(file, original);
      }
    },
  );
});
