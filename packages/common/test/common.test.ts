import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CRP_ERROR_CODES,
  CrpError,
  escapeHtml,
  fileError,
  isCrpError,
  listNames,
  mulberry32,
  nearestNames,
  type Progress,
  permutation,
  progressTracker,
} from '../src/index.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/node.js';

describe('CrpError', () => {
  it('carries code, message, cause and details', () => {
    const cause = new Error('ENOENT');
    const e = new CrpError('not-found', 'no such file a.pth', { cause, details: { path: 'a.pth' } });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('CrpError');
    expect(e.code).toBe('not-found');
    expect(e.message).toBe('no such file a.pth');
    expect(e.cause).toBe(cause);
    expect(e.details).toEqual({ path: 'a.pth' });
    expect(new CrpError('invalid-argument', 'x').details).toEqual({});
  });

  it('isCrpError checks the class, the code, and errors of another copy of the package by shape', () => {
    const e = new CrpError('invalid-shape', 'bad');
    expect(isCrpError(e)).toBe(true);
    expect(isCrpError(e, 'invalid-shape')).toBe(true);
    expect(isCrpError(e, 'not-found')).toBe(false);
    const foreign = Object.assign(new Error('x'), { name: 'CrpError', code: 'disposed' });
    expect(isCrpError(foreign, 'disposed')).toBe(true);
    expect(isCrpError(new Error('x'))).toBe(false);
    expect(isCrpError(null)).toBe(false);
  });

  it('has one kebab-case code set without duplicates', () => {
    expect(new Set(CRP_ERROR_CODES).size).toBe(CRP_ERROR_CODES.length);
    for (const c of CRP_ERROR_CODES) expect(c).toMatch(/^[a-z]+(-[a-z]+)*$/);
  });

  it('fileError says not-found for a missing path and read-failed/write-failed otherwise, with the cause', async () => {
    const missing = await readFile(join(tmpdir(), 'crp-common-no-such-file')).catch((e: unknown) => e);
    const a = fileError('read', 'a.png', missing, 'image');
    expect([a.code, a.message, a.cause, a.details]).toEqual([
      'not-found',
      "cannot read the image 'a.png': it does not exist",
      missing,
      { path: 'a.png' },
    ]);
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const b = fileError('read', 'b.png', denied);
    expect([b.code, b.message, b.cause]).toEqual([
      'read-failed',
      "cannot read the file 'b.png': EACCES: permission denied",
      denied,
    ]);
    expect(fileError('write', 'c.png', denied).code).toBe('write-failed');
    // a write whose folder is missing is not a missing file: there was nothing to find
    expect(fileError('write', 'd/c.png', Object.assign(new Error('x'), { code: 'ENOENT' })).code).toBe(
      'write-failed',
    );
    expect(fileError('read', 'f/c.png', Object.assign(new Error('x'), { code: 'ENOTDIR' })).code).toBe(
      'not-found',
    );
  });

  it('nearestNames orders names by edit distance to a misspelt one', () => {
    const layers = [
      'conv1',
      'layer3.0.conv1',
      'layer3.1.conv1',
      'layer3.1.conv2',
      'layer4.0.downsample.0',
      'fc',
    ];
    expect(nearestNames('layer3.1.conv4', layers, 3)).toEqual([
      'layer3.1.conv1',
      'layer3.1.conv2',
      'layer3.0.conv1',
    ]);
    expect(nearestNames('layer4.0.downsample', layers, 1)).toEqual(['layer4.0.downsample.0']);
    expect(nearestNames('x', [], 3)).toEqual([]);
  });

  it('listNames shortens long lists', () => {
    expect(listNames(['a', 'b'])).toBe('a, b');
    expect(listNames(['a', 'b', 'c', 'd'], 2)).toBe('a, b, ... (2 more)');
  });
});

describe('progressTracker', () => {
  it('reports done, total, elapsed and an ETA from the rate so far', () => {
    let t = 0;
    const events: Progress[] = [];
    const advance = progressTracker(10, (p) => events.push(p), { unit: 'samples', now: () => t });
    t = 100;
    advance(2);
    t = 400;
    advance(3);
    expect(events).toEqual([
      { done: 2, total: 10, elapsedMs: 100, etaMs: 400, unit: 'samples' },
      { done: 5, total: 10, elapsedMs: 400, etaMs: 400, unit: 'samples' },
    ]);
  });

  it('has no ETA for an unknown total, and counts resumed work only towards done', () => {
    let t = 0;
    const events: Progress[] = [];
    progressTracker(undefined, (p) => events.push(p), { now: () => t })(1);
    expect(events[0]).toEqual({ done: 1, total: undefined, elapsedMs: 0, etaMs: undefined });
    const resumed: Progress[] = [];
    const advance = progressTracker(100, (p) => resumed.push(p), { alreadyDone: 50, now: () => t });
    t = 10;
    advance(10);
    // 10 units in 10 ms: the remaining 40 take 40 ms (the 50 resumed ones cost nothing now)
    expect(resumed[0]).toMatchObject({ done: 60, etaMs: 40 });
  });
});

describe('mulberry32 and permutation', () => {
  it('repeat for a seed and match the known first values', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(xs);
    // first value of mulberry32(42), computed independently with 32-bit arithmetic by hand-checked JS
    expect(xs[0]).toBeCloseTo(0.6011037519201636, 15);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it('permutation is a seeded permutation of 0..n-1', () => {
    const p = permutation(50, mulberry32(1));
    expect([...p].sort((x, y) => x - y)).toEqual([...Array(50).keys()]);
    expect([...permutation(50, mulberry32(1))]).toEqual([...p]);
    expect([...p]).not.toEqual([...Array(50).keys()]);
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters of HTML and XML', () => {
    expect(escapeHtml(`<a href="x">Tom & 'Jerry'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;',
    );
  });
});

describe('writeFileAtomic', () => {
  it('writes strings, bytes and parts, creating the folder, and leaves no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crp-common-'));
    await writeFileAtomic(join(dir, 'sub', 'a.txt'), 'hello');
    await writeFileAtomic(join(dir, 'b.bin'), new Uint8Array([1, 2, 3]));
    await writeFileAtomic(join(dir, 'c.bin'), [new Uint8Array([1]), new Uint8Array([2, 3])]);
    await writeJsonAtomic(join(dir, 'd.json'), { a: 1 });
    expect(await readFile(join(dir, 'sub', 'a.txt'), 'utf8')).toBe('hello');
    expect([...(await readFile(join(dir, 'b.bin')))]).toEqual([1, 2, 3]);
    expect([...(await readFile(join(dir, 'c.bin')))]).toEqual([1, 2, 3]);
    expect(JSON.parse(await readFile(join(dir, 'd.json'), 'utf8'))).toEqual({ a: 1 });
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('fails with write-failed and a cause, keeping the old file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crp-common-'));
    const file = join(dir, 'keep.txt');
    await writeFile(file, 'old');
    // a directory where the file should go: the rename fails
    const blocked = join(dir, 'blocked');
    await writeFileAtomic(join(blocked, 'x'), 'x');
    const err = await writeFileAtomic(blocked, 'new').catch((e: unknown) => e);
    expect(isCrpError(err, 'write-failed')).toBe(true);
    expect((err as CrpError).cause).toBeDefined();
    expect((err as CrpError).details).toEqual({ path: blocked });
    expect(await readFile(file, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
