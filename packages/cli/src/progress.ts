import type { Progress, ProgressCallback } from '@crp/common';

/** Progress of long work on stderr: a bar that redraws in a terminal, plain lines otherwise (logs, CI). */
export class ProgressBar {
  private lastLine = 0;
  private readonly started = performance.now();
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  private finished = false;

  /** Draws `done` of the total; `etaMs` is the library's estimate (default: from this bar's own clock). */
  update(done: number, note = '', etaMs?: number): void {
    // the final state is drawn once, however often it is reported (e.g. last batch, then end of epoch)
    if (this.quiet || this.finished) return;
    if (done >= this.total) this.finished = true;
    const elapsed = (performance.now() - this.started) / 1000;
    const eta =
      etaMs !== undefined ? etaMs / 1000 : done > 0 ? (elapsed / done) * (this.total - done) : Number.NaN;
    const share = this.total > 0 ? done / this.total : 1;
    const text =
      `${this.label} ${done}/${this.total} ${Number.isFinite(eta) ? `eta ${eta.toFixed(0)}s` : ''} ${note}`.trimEnd();
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round(share * width);
      this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
      if (done >= this.total) this.stream.write('\n');
    } else if (done >= this.total || performance.now() - this.lastLine > 2000) {
      this.lastLine = performance.now();
      this.stream.write(`${text}\n`);
    }
  }
}

/**
 * An `onProgress` callback for the libraries' {@link Progress} events: the bar is made at the first report, when
 * the total is known, and shows the library's ETA.
 */
export function progressCallback(label: string, quiet: boolean): ProgressCallback {
  let bar: ProgressBar | undefined;
  return (p) => {
    bar ??= new ProgressBar(label, p.total ?? 0, process.stderr, quiet);
    bar.update(p.done, '', p.etaMs);
  };
}
