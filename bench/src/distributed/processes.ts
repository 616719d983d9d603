/** Worker processes for the check and the benchmark, with their events collected. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface WorkerProcess {
  child: ChildProcess;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
  name(): string | undefined;
}

export function startWorkerProcess(url: string, queueName: string, lockMs: number): WorkerProcess {
  const script = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, url, queueName, String(lockMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const events: Record<string, unknown>[] = [];
  let buffer = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      events.push(JSON.parse(buffer.slice(0, i)) as Record<string, unknown>);
      buffer = buffer.slice(i + 1);
    }
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    events,
    exited,
    name: () => events.find((e) => e.type === 'ready')?.name as string | undefined,
  };
}

export async function until(what: string, ok: () => boolean, ms = 300_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`waited ${ms / 1000} s for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
