/**
 * What the bench scripts share to build torchvision models from seeded formulas (@crp/testing) and to run the
 * study on them: vit_b_16's shape, a state dict as the bytes torch.save writes, and a timed `crp study` process.
 */
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { encodeTorchStateDict, type TorchTensor, VIT_CONFIGS, type VitConfig } from '@crp/models';

/** torchvision's vit_b_16 at 224 px with 1000 classes (LayerNorm epsilon 1e-6), with `overrides`. */
export function vitB16Config(overrides: Partial<VitConfig> = {}): VitConfig {
  return { ...VIT_CONFIGS.vit_b_16, imageSize: 224, numClasses: 1000, layerNormEpsilon: 1e-6, ...overrides };
}

/** A state dict (names, shapes, float32 values; BN's `num_batches_tracked` as int64) as .pth bytes. */
export function pthBytes(sd: {
  names: readonly string[];
  entry(name: string): { shape: readonly number[] };
  float32(name: string): Float32Array;
}): Uint8Array {
  const tensors = new Map<string, TorchTensor>();
  for (const name of sd.names) {
    const shape = sd.entry(name).shape;
    tensors.set(
      name,
      name.endsWith('num_batches_tracked')
        ? { shape, data: new BigInt64Array(1) }
        : { shape, data: sd.float32(name) },
    );
  }
  return encodeTorchStateDict(tensors);
}

/** Writes {@link pthBytes} of the state dict to `path`. */
export async function writePth(path: string, sd: Parameters<typeof pthBytes>[0]): Promise<void> {
  await writeFile(path, pthBytes(sd));
}

const loadAverage = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join('/');

/**
 * Runs `node <args>` (the CLI's bin and its arguments), prints the load average before and after and the wall
 * time under `label`, removes `dir` unless `keep`, and exits with the process's code.
 */
export async function timeStudy(label: string, args: string[], dir: string, keep: boolean): Promise<never> {
  console.log(`load average ${loadAverage()}; crp ${args.slice(1).join(' ')}`);
  const t0 = performance.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', (c) => resolve(c ?? 1));
  });
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `${label} study: exit ${code}, ${seconds.toFixed(1)} s wall; load average ${loadAverage()}${keep ? `; outputs in ${dir}` : ''}`,
  );
  if (!keep) await rm(dir, { recursive: true, force: true });
  process.exit(code);
}
