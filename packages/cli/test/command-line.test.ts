import { constants, existsSync } from 'node:fs';
import { access, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCrpError } from '@crp/common';
import { fileSystem } from '@crp/models/node';
import { createRaster } from '@crp/vis';
import { writePng } from '@crp/vis/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { atlasUsage } from '../src/commands/atlas.js';
import { decomposeUsage } from '../src/commands/decompose.js';
import { explainUsage } from '../src/commands/explain.js';
import { layersUsage } from '../src/commands/layers.js';
import { pruneUsage } from '../src/commands/prune.js';
import { refsUsage } from '../src/commands/refs.js';
import { studyUsage } from '../src/commands/study.js';
import { checkWritable, fromSystemError } from '../src/files.js';
import { reportError } from '../src/main.js';
import { HELP } from '../src/model-data.js';
import { crp } from './run.js';

// The command line as a new user meets it: the same options everywhere, every argument checked before any work,
// exit status 2 for usage errors and 1 for failures, file-system errors that name the path and the reason.

let dir: string;
let modelDir: string;
let image: string;
const BANNER = /TF\.js backend/;
const STACK = /\n\s+at .+:\d+:\d+/;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-command-line-'));
  await tf.setBackend('cpu'); // only to build and save the fixture model; the CLI picks its own backend
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [12, 12, 1],
        filters: 3,
        kernelSize: 3,
        padding: 'same',
        name: 'conv1',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
      }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({
        units: 10,
        name: 'logits',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }),
      }),
    ],
  });
  modelDir = join(dir, 'model');
  await model.save(fileSystem(modelDir));
  model.dispose();
  const img = createRaster(12, 12, 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 37) % 256;
  image = join(dir, 'digit.png');
  await writePng(image, img);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('one set of options', () => {
  const withModel = {
    atlas: atlasUsage,
    decompose: decomposeUsage,
    explain: explainUsage,
    layers: layersUsage,
  };
  const all = { ...withModel, prune: pruneUsage, refs: refsUsage, study: studyUsage };

  it('every command describes --model, --input-size and --normalize with the same words', () => {
    for (const [name, usage] of Object.entries(all)) {
      expect(usage, name).toContain(HELP.model);
      expect(usage, name).toContain(HELP.inputSize);
      expect(usage, name).toContain(HELP.normalize);
    }
  });

  it('every command that explains a class takes --target (name or index) with the same words', () => {
    for (const [name, usage] of Object.entries({
      atlas: atlasUsage,
      decompose: decomposeUsage,
      explain: explainUsage,
      study: studyUsage,
    })) {
      expect(usage, name).toContain(HELP.target);
      expect(usage, name).not.toMatch(/--class\b/);
    }
  });
});

describe('arguments are checked before any work', () => {
  const atlas = (...extra: string[]) => [
    'atlas',
    '--model',
    modelDir,
    '--data',
    'mnist',
    '--samples',
    '20',
    '--target',
    '3',
    '--out',
    join(dir, 'atlas', 'atlas.json'),
    ...extra,
  ];

  it('a region larger than the input: exit 2, the largest valid region named, no backend line, nothing written', async () => {
    const r = await crp(...atlas('--region', 'center:500'));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /--region center:500 does not fit the 12x12 input: the largest centre square is center:12/,
    );
    expect(r.stderr).toContain('crp atlas --model M'); // the usage follows a usage error
    expect(r.stderr).not.toMatch(BANNER);
    expect(existsSync(join(dir, 'atlas'))).toBe(false);
    const box = await crp(...atlas('--region', 'box:8,8,6,6'));
    expect(box.code).toBe(2);
    expect(box.stderr).toMatch(/x \+ width <= 12/);
  });

  it('a class that the data does not have, by name or index: exit 2 with the valid classes', async () => {
    const name = await crp(...atlas().map((a) => (a === '3' ? 'seven' : a)));
    expect(name.code, name.stderr).toBe(2);
    expect(name.stderr).toMatch(/'seven' is not a class; valid: 0 \(0\), 1 \(1\)/);
    expect(name.stderr).not.toMatch(BANNER);
    const index = await crp(...atlas().map((a) => (a === '3' ? '12' : a)));
    expect(index.code).toBe(2);
    expect(index.stderr).toMatch(/'12' is not a class/);
  });

  it('a layer that the model does not have: exit 2 with the layers it has', async () => {
    const r = await crp(...atlas('--layers', 'conv1,conv9'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--layers: unknown layer 'conv9' \(nearest: conv1, [^)]*\); the model's layers are: .*conv1/,
    );
    const concept = await crp(
      'decompose',
      '--model',
      modelDir,
      '--image',
      image,
      '--target',
      '1',
      '--layer',
      'conv1',
      '--concept',
      '3',
      '--out',
      join(dir, 'graph', 'g.json'),
    );
    expect(concept.code).toBe(2);
    expect(concept.stderr).toMatch(/--concept 3: layer conv1 has 3 channels \(0 to 2\)/);
    expect(existsSync(join(dir, 'graph'))).toBe(false);
  });

  it('malformed numbers, unknown composites and a bad input size are usage errors alike (exit 2)', async () => {
    for (const args of [
      atlas('--top-k', 'many'),
      atlas('--composite', 'bogus'),
      atlas('--input-size', '0'),
      atlas('--normalize', 'cifar'),
      ['explain', '--model', modelDir, image, '--target', 'x'],
      ['layers', '--model', modelDir, '--composite', 'nope'],
    ]) {
      const r = await crp(...args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(BANNER);
      expect(r.stderr).not.toMatch(STACK);
    }
  });

  it('a valid command prints the backend line once it starts working', async () => {
    const r = await crp('layers', '--model', modelDir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(BANNER);
  });
});

describe('file-system errors name the path and the reason, without a stack', () => {
  it('an output below a file: exit 1 before any work, the path and the reason named', async () => {
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'x');
    const out = join(blocker, 'sub', 'atlas.json');
    const r = await crp('atlas', '--model', modelDir, '--data', 'mnist', '--target', '1', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--out: cannot write '${out}': '${blocker}' is a file, not a folder`);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).not.toMatch(BANNER);
  });

  it('an output that is a folder, or a folder output that is a file', async () => {
    await expect(checkWritable('--out', dir, 'file')).rejects.toThrow(/it is a folder, not a file/);
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    await expect(checkWritable('--out', file, 'folder')).rejects.toThrow(/it is a file, not a folder/);
    await expect(
      checkWritable('--out', join(dir, 'new', 'deeper', 'x.json'), 'file'),
    ).resolves.toBeUndefined();
    expect(existsSync(join(dir, 'new'))).toBe(false); // checking creates nothing
  });

  it('a link to a missing folder (an unmounted disk) is refused before any work', async () => {
    const link = join(dir, 'dangling');
    await symlink(join(dir, 'unmounted'), link);
    const out = join(link, 'out');
    await expect(checkWritable('--out', join(out, 'x.json'), 'file')).rejects.toThrow(
      `--out: cannot write '${join(out, 'x.json')}': '${link}' is a link to '${join(dir, 'unmounted')}', which does not exist`,
    );
    await expect(checkWritable('--out', out, 'folder')).rejects.toThrow(
      /is a link to .*, which does not exist/,
    );
    // a relative link to a link: the message names the missing folder at the end, as a full path
    const chained = join(dir, 'chained');
    await symlink('dangling', chained);
    await expect(checkWritable('--out', join(chained, 'out'), 'folder')).rejects.toThrow(
      `'${chained}' is a link to '${join(dir, 'unmounted')}', which does not exist`,
    );
  });

  it('a folder without write permission', async () => {
    const locked = join(dir, 'locked');
    await mkdir(locked, { mode: 0o500 });
    // root may write anyway (then there is nothing to refuse); everyone else is refused
    const canWrite = await access(locked, constants.W_OK).then(
      () => true,
      () => false,
    );
    const check = checkWritable('--out', join(locked, 'x', 'y.json'), 'file');
    if (canWrite) await expect(check).resolves.toBeUndefined();
    else
      await expect(check).rejects.toThrow(
        `--out: cannot write '${join(locked, 'x', 'y.json')}': permission denied ('${locked}')`,
      );
  });

  it('operating-system errors that escape a command become typed errors', () => {
    const os = (code: string, syscall: string, path: string) =>
      Object.assign(new Error(`${code}: raw, ${syscall} '${path}'`), { code, syscall, path });
    const cases: [Error & { code: string; syscall: string; path: string }, string, string][] = [
      [
        os('EROFS', 'open', '/mnt/ro/a.json'),
        'write-failed',
        "cannot write '/mnt/ro/a.json': the file system is read-only",
      ],
      [os('EACCES', 'mkdir', '/root/x'), 'write-failed', "cannot write '/root/x': permission denied"],
      [
        os('ENOENT', 'open', '/tmp/none/a.json'),
        'write-failed',
        "cannot write '/tmp/none/a.json': a parent folder is missing",
      ],
      [os('ENOENT', 'stat', '/tmp/in.png'), 'not-found', "cannot read '/tmp/in.png': it does not exist"],
      [os('EACCES', 'scandir', '/data'), 'read-failed', "cannot read '/data': permission denied"],
    ];
    for (const [err, code, message] of cases) {
      const typed = fromSystemError(err);
      expect(isCrpError(typed, code as never), err.message).toBe(true);
      expect(typed.message).toBe(message);
      expect(typed.cause).toBe(err);
    }
  });

  it('reports them with exit 1 and one line; an unexpected error without its stack unless CRP_DEBUG is set', () => {
    const lines: string[] = [];
    const spy = vi
      .spyOn(console, 'error')
      .mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      const eacces = Object.assign(new Error("EACCES: permission denied, open '/x/out.json'"), {
        code: 'EACCES',
        syscall: 'open',
        path: '/x/out.json',
      });
      expect(reportError('atlas', { usage: 'u' }, eacces)).toBe(1);
      expect(lines.pop()).toBe("crp atlas: cannot write '/x/out.json': permission denied");
      const previous = process.env.CRP_DEBUG;
      delete process.env.CRP_DEBUG;
      expect(reportError('atlas', { usage: 'u' }, new TypeError('boom'))).toBe(1);
      const line = lines.pop()!;
      expect(line).toBe('crp atlas failed: boom (CRP_DEBUG=1 prints the stack)');
      if (previous !== undefined) process.env.CRP_DEBUG = previous;
    } finally {
      spy.mockRestore();
    }
  });
});
