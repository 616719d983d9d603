import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultReferenceDir } from '../src/reference-dir.js';
import { runConformance } from '../src/run.js';

const refDir = defaultReferenceDir();

describe('vis conformance', () => {
  it('passes every golden colouring case', async () => {
    const summary = await runConformance([refDir], { kinds: ['vis'] });
    expect(summary.outcomes.length).toBeGreaterThan(0);
    expect(summary.outcomes.map((o) => o.id)).toContain('imgify_grid_0');
    for (const o of summary.outcomes) {
      expect(o.kind).toBe('vis');
      expect(o.passed, `${o.id}: ${o.detail}`).toBe(true);
      expect(o.worst).toBeLessThanOrEqual(1);
    }
    expect(summary.failed).toBe(0);
    expect(summary.passed).toBe(summary.outcomes.length);
  });

  describe('on altered golden values', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'crp-conf-vis-'));
      await mkdir(join(dir, 'vis'));
      const golden = JSON.parse(await readFile(join(refDir, 'vis', 'vis_golden.json'), 'utf8')) as {
        cases: { id: string; palette?: { data: number[] }; rgb?: { data: number[] } }[];
      };
      const byId = (id: string) => golden.cases.find((c) => c.id === id)!;
      // bwr level 1, entry 1: 255 * (1 - alpha) with a fractional value, far from a boundary: [1, 1, 255] -> [2, ...]
      byId('palette_bwr_level1.0').palette!.data[3] = 2;
      // gray level 1, entry 10 is exactly 10.0 before truncation: 9 is what a value a hair below would give (a tie)
      byId('palette_gray_level1.0').palette!.data[30] = 9;
      byId('imgify_heatmap_0').rgb!.data[0] = 250;
      await writeFile(join(dir, 'vis', 'vis_golden.json'), JSON.stringify(golden));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('fails a changed value unless it sits on a rounding tie', async () => {
      const summary = await runConformance([dir], { kinds: ['vis'] });
      const by = (id: string) => summary.outcomes.find((o) => o.id === id)!;
      expect(by('palette_bwr_level1.0').passed).toBe(false);
      expect(by('palette_bwr_level1.0').worst).toBe(Number.POSITIVE_INFINITY);
      expect(by('palette_bwr_level1.0').detail).toMatch(/^1 of 768 values differ/);
      expect(by('imgify_heatmap_0').passed).toBe(false);
      expect(by('palette_gray_level1.0').passed).toBe(true);
      expect(by('palette_gray_level1.0').worst).toBe(1);
      expect(by('palette_gray_level1.0').detail).toMatch(/1 differ by 1 at rounding ties/);
      expect(summary.failed).toBe(2);
    });

    it('refuses to pass where there is no vis/ folder: nothing was checked', async () => {
      await expect(runConformance([join(dir, 'vis')], { kinds: ['vis'] })).rejects.toMatchObject({
        name: 'CrpError',
        code: 'empty-data',
        message: expect.stringMatching(/no case of kind 'vis'/),
      });
    });
  });
});
