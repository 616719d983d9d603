import { vi } from 'vitest';
import { main } from '../src/index.js';

/** Runs the CLI in-process (one wasm thread) and captures what it prints. */
export async function crp(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi
    .spyOn(console, 'error')
    .mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await main([...argv, '--threads', '1']);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/** The `result` of a `--json` run. */
export function resultOf<T>(stdout: string): T {
  return (JSON.parse(stdout) as { result: T }).result;
}
