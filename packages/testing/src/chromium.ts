/**
 * One way for every browser test (and scripts/test.mjs, which keys turbo's test cache on the result) to find
 * Chromium and to decide whether a browser test runs, is required, or is skipped.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Executable names looked up on PATH, in this order (Debian, Ubuntu/others, Google's builds). */
export const CHROMIUM_NAMES = [
  'chromium',
  'chromium-browser',
  'google-chrome',
  'google-chrome-stable',
] as const;

/** Where Debian's package puts it, for a PATH that lacks /usr/bin. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Chromium executable: `$CRP_CHROMIUM` when set (and empty means "look it up"), else the first of
 * {@link CHROMIUM_NAMES} on PATH, else the first executable of `fallbacks` (/usr/bin/chromium). `undefined` when there is none, or when
 * `$CRP_CHROMIUM` names a file that is not executable.
 */
export function findChromium(
  env: NodeJS.ProcessEnv = process.env,
  fallbacks: readonly string[] = [DEBIAN_CHROMIUM],
): string | undefined {
  const explicit = env.CRP_CHROMIUM;
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const name of CHROMIUM_NAMES) {
      const file = join(dir, name);
      if (isExecutable(file)) return file;
    }
  }
  return fallbacks.find(isExecutable);
}

/** `chromium --version` of an executable (e.g. "Chromium 131.0.6778.85 built on Debian ..."), or undefined. */
export function chromiumVersion(executable: string): string | undefined {
  try {
    // stderr ignored: Debian's wrapper script prints shell noise there on some machines
    return execFileSync(executable, ['--version'], {
      encoding: 'utf8',
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Launch flags of headless Chromium that work on a machine without display or sandbox support (containers, CI),
 * and keep it from calling home (no background networking, component updates or sync).
 */
export const HEADLESS_CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * Added for pages that compute on WebGL or WebGPU (TF.js webgl/webgpu backends): the GPU where there is one,
 * else SwiftShader, Chromium's software renderer, which it uses only when allowed (`--enable-unsafe-swiftshader`);
 * WebGPU is exposed on Linux only with `--enable-unsafe-webgpu` (on SwiftShader's Vulkan where there is no GPU).
 */
export const GPU_COMPUTE_ARGS: readonly string[] = [
  '--enable-unsafe-swiftshader',
  '--enable-unsafe-webgpu',
  '--ignore-gpu-blocklist',
];

/** Whether a browser test runs here, and with which executable. */
export interface BrowserTestPlan {
  /** False: skip the test (`reason` says why; print it). */
  run: boolean;
  /** The executable to launch; undefined when none was found (a required test then fails with `reason`). */
  executable: string | undefined;
  /** True in CI or with CRP_REQUIRE_BROWSER=1: a missing browser is a failure, never a skip. */
  required: boolean;
  /** Why the test is skipped, or why it will fail; empty when it simply runs. */
  reason: string;
}

const INSTALL = "install it ('apt-get install -y chromium') or point CRP_CHROMIUM at a Chromium or Chrome";

/**
 * The decision for a browser test. In CI (`CI=true`) or with `CRP_REQUIRE_BROWSER=1` the test must run: a
 * missing browser fails it (CRP_SKIP_BROWSER is ignored there, so CI cannot skip by accident). Elsewhere a
 * machine without Chromium skips it with a message, and `CRP_SKIP_BROWSER=1` skips it explicitly.
 */
export function browserTestPlan(
  env: NodeJS.ProcessEnv = process.env,
  fallbacks: readonly string[] = [DEBIAN_CHROMIUM],
): BrowserTestPlan {
  const required = env.CI === 'true' || env.CRP_REQUIRE_BROWSER === '1';
  const executable = findChromium(env, fallbacks);
  const missing = env.CRP_CHROMIUM
    ? `CRP_CHROMIUM=${env.CRP_CHROMIUM} is not an executable file`
    : `no Chromium found (looked for ${CHROMIUM_NAMES.join(', ')} on PATH and ${fallbacks.join(', ') || 'no fallback'})`;
  if (required) {
    return { run: true, executable, required, reason: executable ? '' : `${missing}: ${INSTALL}` };
  }
  if (env.CRP_SKIP_BROWSER === '1') {
    return { run: false, executable, required, reason: 'skipping the browser test: CRP_SKIP_BROWSER=1' };
  }
  if (executable === undefined) {
    return { run: false, executable, required, reason: `skipping the browser test: ${missing}; ${INSTALL}` };
  }
  return { run: true, executable, required, reason: '' };
}

/** Launch options (playwright-core's) of headless Chromium for a page that computes on WebGL or WebGPU: the
 * browser tests, the conformance runner's browser mode and the bench's browser suite launch it so. */
export function gpuPageLaunchOptions(executable: string): {
  executablePath: string;
  headless: true;
  args: string[];
} {
  return {
    executablePath: executable,
    headless: true,
    args: [...HEADLESS_CHROMIUM_ARGS, ...GPU_COMPUTE_ARGS],
  };
}
