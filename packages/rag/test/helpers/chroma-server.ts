import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `chroma run` (the chromadb npm package's native server) on 127.0.0.1 with data in `dataDir`. */
export async function startChroma(dataDir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const require = createRequire(import.meta.url);
  // resolve() gives dist/cjs/...; the CLI is dist/cli.mjs
  const entry = require.resolve('chromadb');
  const cli = path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`)), 'dist', 'cli.mjs');
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [cli, 'run', '--path', dataDir, '--host', '127.0.0.1', '--port', String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ANONYMIZED_TELEMETRY: 'False', CHROMA_TELEMETRY: 'False' },
    },
  );
  let log = '';
  child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`chroma exited early (${child.exitCode}): ${log}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/v2/heartbeat`);
      if (r.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`chroma did not start within 30 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    port,
    stop: async () => {
      // ended already (an exit code, or a signal: then exitCode stays null)
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
