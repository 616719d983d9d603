import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../src/index.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  const stream = { isTTY, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, written };
}

describe('ProgressBar', () => {
  it('redraws one line in a terminal and ends it once', () => {
    const { stream, written } = fakeStream(true);
    const bar = new ProgressBar('work', 4, stream);
    for (const done of [1, 2, 3, 4, 4]) bar.update(done);
    expect(written.filter((s) => s === '\n')).toHaveLength(1);
    expect(written[0]).toMatch(/^\r\[#{6}\.{18}\] work 1\/4/);
    expect(written.at(-2)).toMatch(/^\r\[#{24}\] work 4\/4/);
  });

  it('prints plain lines when not a terminal, the final state once, nothing when quiet', () => {
    const { stream, written } = fakeStream(false);
    const bar = new ProgressBar('work', 2, stream);
    bar.update(1);
    bar.update(2, 'done');
    bar.update(2, 'done');
    // intermediate lines at most every 2 s; the final state always, once
    expect(written.filter((l) => l.startsWith('work 2/2'))).toEqual(['work 2/2 eta 0s done\n']);
    expect(written.at(-1)).toBe('work 2/2 eta 0s done\n');
    const quiet = fakeStream(false);
    new ProgressBar('work', 2, quiet.stream, true).update(2);
    expect(quiet.written).toHaveLength(0);
  });
});
