import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readCaseIndex } from '../src/discover.js';
import { runners } from '../src/kinds/index.js';
import { defaultReferenceDir } from '../src/reference-dir.js';
import { nodeFiles } from '../src/reference-files-node.js';
import { knownKinds, runConformance } from '../src/run.js';

const refDir = defaultReferenceDir();
const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('the vendored reference (vendor/reference)', () => {
  it('is byte for byte what SHA256SUMS records, with no file added or missing', () => {
    const sums = new Map(
      readFileSync(join(refDir, 'SHA256SUMS'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => {
          const [hash, file] = line.split(/ {2}/);
          return [file!, hash!] as const;
        }),
    );
    const files = filesUnder(refDir).filter((f) => f !== 'SHA256SUMS' && f !== 'PROVENANCE.md');
    expect(files).toEqual([...sums.keys()].sort());
    for (const f of files) {
      const hash = createHash('sha256')
        .update(readFileSync(join(refDir, f)))
        .digest('hex');
      expect(hash, f).toBe(sums.get(f));
    }
  });

  it('lists the 30 shared cases in index.json (24 lrp, 5 crp, 1 relmax), every case file listed', async () => {
    const entries = (await readCaseIndex(refDir, nodeFiles))!;
    const count = (kind: string) => entries.filter((e) => e.kind === kind).length;
    expect(entries).toHaveLength(30);
    expect([count('lrp'), count('crp'), count('relmax')]).toEqual([24, 5, 1]);
  });

  it('has cases of every kind a runner is registered for', async () => {
    for (const runner of runners) {
      expect((await runner.discover(refDir, nodeFiles)).length, runner.kind).toBeGreaterThan(0);
    }
  });
});

describe('reference data that cannot be checked stop the run', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** A temp reference directory with the given files (path -> content). */
  async function referenceDir(files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'crp-conf-ref-'));
    dirs.push(dir);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    return dir;
  }
  const index = (cases: { id: string; kind: string; file: string }[]) =>
    JSON.stringify({ format: 'lrp-golden-index/1', cases });
  const oneLrpCase = {
    'index.json': index([{ id: 'a', kind: 'lrp', file: 'cases/a.json' }]),
    'cases/a.json': '{}',
  };
  const rejects = (dirsToRun: string[], kinds: string[] | undefined, code: string, message: RegExp) =>
    expect(runConformance(dirsToRun, kinds ? { kinds } : {})).rejects.toMatchObject({
      name: 'CrpError',
      code,
      message: expect.stringMatching(message),
    });

  it('a selected kind with no case', async () => {
    const dir = await referenceDir(oneLrpCase);
    await rejects([dir], ['crp'], 'empty-data', /no case of kind 'crp' found/);
    await rejects([dir], ['lrp', 'vis'], 'empty-data', /no case of kind 'vis' found/);
    // all kinds (the default) means all kinds: a directory without vis cases does not pass by skipping them
    await rejects([dir], undefined, 'empty-data', /'crp', 'relmax', 'region', 'vis'/);
  });

  it('a kind that does not exist', async () => {
    await rejects(
      [refDir],
      ['region-typo'],
      'invalid-argument',
      /unknown kind 'region-typo'; valid kinds: lrp/,
    );
  });

  it('an index.json that is not JSON, has no case list, or a malformed entry', async () => {
    const broken = await referenceDir({ 'index.json': '{"cases": [', 'cases/a.json': '{}' });
    await rejects([broken], ['lrp'], 'corrupt-file', /index\.json is not valid JSON/);
    const noList = await referenceDir({ 'index.json': '{"format": "lrp-golden-index/1"}' });
    await rejects([noList], ['lrp'], 'corrupt-file', /has no 'cases' list/);
    const badEntry = await referenceDir({
      'index.json': JSON.stringify({ cases: [{ id: 'a', kind: 'lrp' }] }),
    });
    await rejects([badEntry], ['lrp'], 'corrupt-file', /cases\[0\] needs string fields id, kind and file/);
    const otherFormat = await referenceDir({
      'index.json': JSON.stringify({ format: 'other/2', cases: [] }),
    });
    await rejects([otherFormat], ['lrp'], 'unsupported-format', /format "other\/2"/);
  });

  it('an index.json that cannot be read', async () => {
    const dir = await referenceDir({ 'index.json/x': '', 'cases/a.json': '{}' });
    await rejects([dir], ['lrp'], 'read-failed', /cannot read .*index\.json/);
  });

  it('case files without an index.json', async () => {
    const dir = await referenceDir({ 'cases/a.json': '{}' });
    await rejects([dir], ['lrp'], 'not-found', /1 case files in cases\/ but no index\.json/);
  });

  it('a case file that index.json does not list, or a listed file that is missing', async () => {
    const unlisted = await referenceDir({ ...oneLrpCase, 'cases/b.json': '{}' });
    await rejects(
      [unlisted],
      ['lrp'],
      'corrupt-file',
      /not listed in index\.json would never run: cases\/b\.json/,
    );
    const missing = await referenceDir({
      'index.json': index([{ id: 'gone', kind: 'lrp', file: 'cases/gone.json' }]),
    });
    await rejects([missing], ['lrp'], 'not-found', /lists case 'gone' in cases\/gone\.json/);
  });

  it('a case of a kind no runner knows', async () => {
    const dir = await referenceDir({
      ...oneLrpCase,
      'index.json': index([
        { id: 'a', kind: 'lrp', file: 'cases/a.json' },
        { id: 'b', kind: 'saliency', file: 'cases/b.json' },
      ]),
      'cases/b.json': '{}',
    });
    await rejects([dir], ['lrp'], 'unsupported-format', /kind 'saliency' that no runner knows/);
  });

  it('a bundle file (vis/vis_golden.json) that is not JSON', async () => {
    const dir = await referenceDir({ 'vis/vis_golden.json': 'not json' });
    await rejects([dir], ['vis'], 'corrupt-file', /vis_golden\.json is not valid JSON/);
  });

  describe('pnpm conformance exits non-zero', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', timeout: 120_000 });

    it('2 on an unknown --kind (usage error), listing the valid kinds', () => {
      const r = run('--kind', 'nosuch', refDir);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`unknown --kind 'nosuch'; valid kinds: ${knownKinds().join(', ')}`);
    });

    it('1 when a selected kind has no case, index.json is invalid, or a case file is not listed', async () => {
      const lrpOnly = await referenceDir(oneLrpCase);
      const noVis = run('--kind', 'vis', lrpOnly);
      expect(noVis.status).toBe(1);
      expect(noVis.stderr).toMatch(/conformance not run: no case of kind 'vis' found/);
      const invalid = await referenceDir({ 'index.json': 'nope', 'cases/a.json': '{}' });
      expect(run('--kind', 'lrp', invalid).status).toBe(1);
      const unlisted = await referenceDir({ ...oneLrpCase, 'cases/b.json': '{}' });
      const r = run('--kind', 'lrp', unlisted);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/cases\/b\.json/);
      expect(r.stdout).not.toMatch(/passed/);
    });
  });
});
