import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CrpError, describeError, fileError, fileErrorCode } from '@crp/common';
import type * as tf from '@tensorflow/tfjs-core';
import type { Checkpoint, CheckpointState, CheckpointStore } from './checkpoint.js';
import { fileSystem } from './file-system.js';

const CHECKPOINT = /^epoch-(\d{4,})$/;

const folderOf = (epoch: number) => `epoch-${String(epoch).padStart(4, '0')}`;

/** state.json: the checkpoint's state and the layout of optimizer.bin. */
type StateFile = CheckpointState & { optimizerSpecs: tf.io.WeightsManifestEntry[] };

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * Checkpoints in a directory, one folder per epoch: `epoch-0003/` holds `model/` (model.json + weights, see
 * {@link fileSystem}), `optimizer.bin` and `state.json`. Each folder is written under a temporary name and renamed
 * into place, so a crash never leaves a half-written checkpoint; a folder without `state.json` is ignored.
 *
 * ```ts
 * await train(model, data, { epochs: 10, checkpoints: fileCheckpoints('out/checkpoints') }); // run again: resumes
 * ```
 */
export function fileCheckpoints(dir: string): CheckpointStore {
  return {
    async epochs() {
      const names = await readdir(dir).catch(() => [] as string[]);
      const found: number[] = [];
      for (const name of names) {
        const m = CHECKPOINT.exec(name);
        if (m === null) continue;
        const complete = await readFile(join(dir, name, 'state.json')).then(
          () => true,
          () => false,
        );
        if (complete) found.push(Number(m[1]));
      }
      return found;
    },

    async read(epoch) {
      const path = join(dir, folderOf(epoch));
      let stateFile: StateFile;
      let optimizer: Uint8Array;
      try {
        stateFile = JSON.parse(await readFile(join(path, 'state.json'), 'utf8')) as StateFile;
        optimizer = await readFile(join(path, 'optimizer.bin'));
      } catch (err) {
        throw fileError('read', path, err, 'checkpoint');
      }
      const { optimizerSpecs, ...state } = stateFile;
      const model = await fileSystem(join(path, 'model')).load!();
      return { state, model, optimizer: { data: toArrayBuffer(optimizer), specs: optimizerSpecs } };
    },

    async write(checkpoint: Checkpoint, keep: number) {
      const name = folderOf(checkpoint.state.epoch);
      const final = join(dir, name);
      const temp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await mkdir(temp, { recursive: true });
        await fileSystem(join(temp, 'model')).save!(checkpoint.model);
        await writeFile(join(temp, 'optimizer.bin'), new Uint8Array(checkpoint.optimizer.data));
        const state: StateFile = { ...checkpoint.state, optimizerSpecs: checkpoint.optimizer.specs };
        await writeFile(join(temp, 'state.json'), `${JSON.stringify(state, null, 1)}\n`);
        await rm(final, { recursive: true, force: true });
        await rename(temp, final);
      } catch (err) {
        await rm(temp, { recursive: true, force: true }).catch(() => undefined);
        throw new CrpError(
          fileErrorCode('write', err),
          `cannot write the checkpoint '${final}': ${describeError(err)}`,
          { cause: err, details: { path: final } },
        );
      }
      const old = (await readdir(dir))
        .filter((n) => CHECKPOINT.test(n))
        .sort()
        .reverse()
        .slice(keep);
      for (const n of old) await rm(join(dir, n), { recursive: true, force: true });
      return final;
    },
  };
}
