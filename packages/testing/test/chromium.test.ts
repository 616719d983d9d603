import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserTestPlan, chromiumVersion, findChromium } from '../src/chromium.js';

let dir: string;
let first: string;
let second: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-chromium-'));
  first = join(dir, 'a');
  second = join(dir, 'b');
  await mkdir(first);
  await mkdir(second);
  // a/google-chrome is executable, a/chromium is not; b/chromium-browser is executable
  await writeFile(join(first, 'chromium'), '');
  await writeFile(join(first, 'google-chrome'), '#!/bin/sh\necho "Google Chrome 1.2.3"\n');
  await chmod(join(first, 'google-chrome'), 0o755);
  await writeFile(join(second, 'chromium-browser'), '#!/bin/sh\n');
  await chmod(join(second, 'chromium-browser'), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('findChromium', () => {
  it('takes the first PATH directory holding an executable of a known name, skipping non-executables', () => {
    expect(findChromium({ PATH: [first, second].join(delimiter) }, [])).toBe(join(first, 'google-chrome'));
    expect(findChromium({ PATH: [second, first].join(delimiter) }, [])).toBe(
      join(second, 'chromium-browser'),
    );
  });

  it('prefers CRP_CHROMIUM, and finds nothing when it is not executable', () => {
    const env = { PATH: second, CRP_CHROMIUM: join(first, 'google-chrome') };
    expect(findChromium(env, [])).toBe(join(first, 'google-chrome'));
    expect(findChromium({ ...env, CRP_CHROMIUM: join(first, 'chromium') }, [])).toBeUndefined();
    // empty means unset
    expect(findChromium({ ...env, CRP_CHROMIUM: '' }, [])).toBe(join(second, 'chromium-browser'));
  });

  it('falls back to the given fixed paths, then to nothing', () => {
    expect(findChromium({ PATH: '' }, [join(first, 'chromium'), join(second, 'chromium-browser')])).toBe(
      join(second, 'chromium-browser'),
    );
    expect(findChromium({ PATH: join(dir, 'nowhere') }, [])).toBeUndefined();
  });
});

describe('chromiumVersion', () => {
  it('is what --version prints (part of the test cache key), undefined for a file that does not run', () => {
    expect(chromiumVersion(join(first, 'google-chrome'))).toBe('Google Chrome 1.2.3');
    expect(chromiumVersion(join(first, 'chromium'))).toBeUndefined();
  });
});

describe('browserTestPlan', () => {
  it('runs where Chromium is found, skips with a reason where it is not', () => {
    expect(browserTestPlan({ PATH: first }, [])).toEqual({
      run: true,
      executable: join(first, 'google-chrome'),
      required: false,
      reason: '',
    });
    const plan = browserTestPlan({ PATH: join(dir, 'nowhere') }, []);
    expect(plan).toMatchObject({ run: false, executable: undefined, required: false });
    expect(plan.reason).toMatch(/no Chromium found .*google-chrome/);
  });

  it('never skips in CI or with CRP_REQUIRE_BROWSER=1: a missing browser is a failure with a reason', () => {
    for (const env of [{ CI: 'true' }, { CRP_REQUIRE_BROWSER: '1' }, { CI: 'true', CRP_SKIP_BROWSER: '1' }]) {
      const plan = browserTestPlan({ PATH: join(dir, 'nowhere'), ...env }, []);
      expect(plan).toMatchObject({ run: true, executable: undefined, required: true });
      expect(plan.reason).toMatch(/apt-get install -y chromium/);
    }
  });

  it('skips on CRP_SKIP_BROWSER=1 outside CI, and names a CRP_CHROMIUM that does not work', () => {
    expect(browserTestPlan({ PATH: first, CRP_SKIP_BROWSER: '1' }, [])).toMatchObject({ run: false });
    const bad = browserTestPlan({ PATH: first, CRP_CHROMIUM: join(first, 'chromium') }, []);
    expect(bad.run).toBe(false);
    expect(bad.reason).toContain(`CRP_CHROMIUM=${join(first, 'chromium')} is not an executable file`);
  });
});
