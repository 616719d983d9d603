/**
 * The golden cases inside headless Chromium (`pnpm conformance --browser`): the page runs the same runners on
 * TF.js's browser backends against the reference data served over HTTP. WebGL (SwiftShader where there is no
 * GPU) must pass every case within the same tolerance as Node; WebGPU either passes them or is reported
 * unavailable for the one documented reason (its synchronous read-back returns wrong values), never as passed.
 */
import { browserTestPlan } from '@crp/testing/chromium';
import { describe, expect, it } from 'vitest';
import { runInBrowser } from '../src/browser/run-browser.js';
import { defaultReferenceDir } from '../src/reference-dir.js';
import { runConformance } from '../src/run.js';
import type { CaseOutcome } from '../src/types.js';

const browser = browserTestPlan();

/** The page's message when WebGPU's read-back check fails (src/browser/page.ts, syncReadbackProblem). */
const READBACK_FAILED =
  /^TF\.js's synchronous read-back \(dataSync\) on webgpu returns wrong values here: 1\.\.(\d+) read as \[([^\]]*)\] at its first, middle and last element instead of \[([^\]]*)\]; the toolkit's synchronous API needs it$/;
if (!browser.run) console.warn(browser.reason);

/** The kinds checked in the page. The torchvision ResNet kinds (torch-logits, torch-lrp, torch-crp: resnet18 and
 * resnet50) run in Node only: on SwiftShader's software WebGL they would take longer than this test may. */
const BROWSER_KINDS = ['lrp', 'crp', 'relmax', 'region', 'vis', 'onnx-lrp', 'onnx-crp', 'vit', 'evaluation'];

describe.skipIf(!browser.run)('golden cases in headless Chromium', () => {
  const dirs = [defaultReferenceDir()];

  it('pass on webgl, every kind, the same cases as in Node', { timeout: 900_000 }, async () => {
    if (browser.executable === undefined) throw new Error(browser.reason);
    const outcomes: CaseOutcome[] = [];
    let description = '';
    const result = await runInBrowser({
      executable: browser.executable,
      dirs,
      kinds: BROWSER_KINDS,
      backend: 'webgl',
      onBackend: (d) => {
        description = d;
      },
      onCase: (o) => outcomes.push(o),
    });
    // really on WebGL2 with float32 textures
    expect(description).toMatch(/WEBGL_VERSION=2, WEBGL_RENDER_FLOAT32_ENABLED=true/);
    // every case, the dilated convs too: stride 1 (`__dilated_net`) on TF.js's own dilations, stride AND
    // dilation (`__strided_dilated`) on the kernel spread by zeros (@crp/lrp's dilateKernel, rank-4 pads only:
    // TF.js's WebGL pad does not compile above rank 4)
    for (const o of outcomes) expect(o.passed, `${o.kind} ${o.id}: ${o.detail}`).toBe(true);
    expect(outcomes.filter((o) => o.id.endsWith('__strided_dilated'))).toHaveLength(3);
    const node = await runConformance(dirs, { kinds: BROWSER_KINDS });
    expect(outcomes.map((o) => o.id)).toEqual(node.outcomes.map((o) => o.id));
    expect(new Set(outcomes.map((o) => o.kind))).toEqual(new Set(BROWSER_KINDS));
    expect(result).toEqual({ status: 'done', passed: outcomes.length, failed: 0 });
  });

  it('fails a case whose numbers are wrong, in the page too', { timeout: 300_000 }, async () => {
    // the page's comparison is the Node one: a case read from a directory with an altered golden value fails
    const { mkdtemp, mkdir, copyFile, readFile, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'crp-conf-browser-'));
    try {
      await mkdir(join(dir, 'cases'));
      await mkdir(join(dir, 'models'));
      await copyFile(join(dirs[0]!, 'models', 'tiny_vgg.json'), join(dir, 'models', 'tiny_vgg.json'));
      const golden = JSON.parse(
        await readFile(join(dirs[0]!, 'cases', 'lrp_composite_EpsilonPlusFlat__tiny_vgg.json'), 'utf8'),
      );
      const data = golden.relevance.input.data as number[];
      data[5] = data[5]! + 0.01 * Math.max(...data.map(Math.abs));
      await writeFile(join(dir, 'cases', 'altered.json'), JSON.stringify(golden));
      const cases = [{ id: golden.id, kind: 'lrp', file: 'cases/altered.json' }];
      await writeFile(join(dir, 'index.json'), JSON.stringify({ format: 'lrp-golden-index/1', cases }));
      const outcomes: CaseOutcome[] = [];
      const result = await runInBrowser({
        executable: browser.executable!,
        dirs: [dir],
        kinds: ['lrp'],
        backend: 'webgl',
        onCase: (o) => outcomes.push(o),
      });
      expect(result).toEqual({ status: 'done', passed: 0, failed: 1 });
      expect(outcomes[0]!.detail).toMatch(/^input:/);
      // and reference data that cannot be checked stop the run, as in Node
      const missing = await runInBrowser({
        executable: browser.executable!,
        dirs: [dir],
        kinds: ['crp'],
        backend: 'webgl',
      });
      expect(missing.status).toBe('not-run');
      expect(missing.status === 'not-run' && missing.reason).toMatch(/no case of kind 'crp'/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('on webgpu: every case passes, or the backend is unavailable for the documented reason (read-back), never another', {
    timeout: 900_000,
  }, async () => {
    const outcomes: CaseOutcome[] = [];
    const result = await runInBrowser({
      executable: browser.executable!,
      dirs,
      kinds: ['lrp'],
      backend: 'webgpu',
      onCase: (o) => outcomes.push(o),
    });
    if (result.status === 'unavailable') {
      // only the documented reason (docs/guides/browser.md, "WebGPU"): the backend started, but its synchronous
      // read-back returned wrong values. Anything else (no navigator.gpu, no adapter, a backend that does not
      // start) means the browser was not started as the guide says, and fails here.
      const readback = READBACK_FAILED.exec(result.reason);
      expect(readback, `webgpu unavailable for an undocumented reason: ${result.reason}`).not.toBeNull();
      // and the values it names really are wrong: 1..n read back differently from [1, ceil(n / 2), n]
      const [, n, got, want] = readback!;
      const size = Number(n);
      expect(want).toBe(`${1}, ${Math.ceil(size / 2)}, ${size}`);
      expect(got).not.toBe(want);
      expect(outcomes).toEqual([]);
    } else {
      for (const o of outcomes) expect(o.passed, `${o.id}: ${o.detail}`).toBe(true);
      expect(result).toEqual({ status: 'done', passed: 24, failed: 0 });
    }
  });
});
