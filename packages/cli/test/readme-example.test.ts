import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// The root README's library example, run as written in a new project outside the workspace: the folder's
// node_modules hold exactly the packages its `npm i` line names (linked to this workspace's builds), so an
// import that the line forgets fails here with ERR_MODULE_NOT_FOUND, as it would for a user.

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..', '..');
const run = promisify(execFile);
let project: string | undefined;

afterAll(async () => {
  if (project !== undefined) await rm(project, { recursive: true, force: true });
});

/** The `npm i` packages and the code block of the README's "Explain your own model". */
async function readmeExample(): Promise<{ packages: string[]; code: string }> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('Explain your own model');
  expect(start, 'the README has the section').toBeGreaterThanOrEqual(0);
  const section = readme.slice(start);
  const install = /npm i ([^`]+)`/.exec(section.replace(/\n/g, ' '));
  const code = /```ts\n([\s\S]*?)```/.exec(section);
  expect(install).not.toBeNull();
  expect(code).not.toBeNull();
  return { packages: install![1]!.trim().split(/\s+/), code: code![1]! };
}

describe("the README's library example", () => {
  it('runs as written from a fresh project', async () => {
    const { packages, code } = await readmeExample();
    expect(packages).toContain('@tensorflow/tfjs-backend-wasm');
    project = await mkdtemp(join(tmpdir(), 'crp-readme-'));
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'readme-example', type: 'module' }),
    );
    await writeFile(join(project, 'explain.ts'), code);
    // the packages the line installs, as this workspace built them (tsx runs the file, as the README says)
    const fromCli = createRequire(join(root, 'packages', 'cli', 'package.json'));
    const fromRoot = createRequire(join(root, 'package.json'));
    for (const name of packages) {
      const manifest = (name === 'tsx' ? fromRoot : fromCli).resolve(`${name}/package.json`);
      const target = await realpath(dirname(manifest));
      await mkdir(dirname(join(project, 'node_modules', name)), { recursive: true });
      await symlink(target, join(project, 'node_modules', name), 'dir');
    }
    const tsx = join(project, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const { stdout, stderr } = await run(process.execPath, [tsx, 'explain.ts'], {
      cwd: project,
      timeout: 240_000,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`the example failed:\n${(err.stderr ?? err.message).slice(-3000)}`);
    });
    expect(stdout, stderr).toMatch(/relevance of the input: \[ 1, 32, 32, 3 \] sum -?\d/);
    expect(stdout).toMatch(/conditional heatmaps: \[ 2, 32, 32 \] channel relevance: \[ 2, 16 \]/);
  }, 300_000);
});
