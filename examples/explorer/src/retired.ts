/**
 * When what a new image, model or scaling replaced (an input tensor, a model, its explainers) can be disposed.
 * Actions overlap: one may be inside a wait (a repaint, a GPU read in pixel flipping) with the replaced objects in
 * hand, and it stops only at its next check. So a retired object waits for the actions that ran when it was
 * retired, and no longer: an action started later reads only what replaced it. A page that is never idle (a new
 * action before the last one ends, again and again) thus holds only what the few actions still running may use.
 */

/** Anything that frees its tensors: a tensor, a model, an explainer. */
export interface Disposable {
  dispose(): void;
}

export class RetiredObjects {
  private nextAction = 0;
  private readonly running = new Set<number>();
  private readonly waiting: { object: Disposable; until: Set<number> }[] = [];
  /** Objects disposed already: retired again, they are not disposed again. */
  private readonly disposed = new WeakSet<Disposable>();

  /** An action begins: returns its id, for `end`. */
  begin(): number {
    const id = this.nextAction++;
    this.running.add(id);
    return id;
  }

  /** The action `id` has ended: disposes what waited for it alone (and for actions that ended before). */
  end(id: number): void {
    if (!this.running.delete(id)) {
      throw new Error(`action ${id} is not running (running: ${[...this.running].join(', ') || 'none'})`);
    }
    const free: Disposable[] = [];
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i]!;
      w.until.delete(id);
      if (w.until.size === 0) {
        free.push(w.object);
        this.waiting.splice(i, 1);
      }
    }
    this.disposeAll(free.reverse());
  }

  /**
   * `object` is no longer the page's: disposed once every action running now has ended (at once if none runs).
   * An object retired again is disposed once (a model's second dispose throws): while it waits, when the later
   * retirement's actions have ended too; after, not again.
   */
  retire(...objects: Disposable[]): void {
    const now: Disposable[] = [];
    for (const object of new Set(objects)) {
      if (this.disposed.has(object)) continue;
      const waits = this.waiting.find((w) => w.object === object);
      if (waits) for (const id of this.running) waits.until.add(id);
      else if (this.running.size === 0) now.push(object);
      else this.waiting.push({ object, until: new Set(this.running) });
    }
    this.disposeAll(now);
  }

  /** The number of retired objects not yet disposed (the page shows it as `data-retired`). */
  get pending(): number {
    return this.waiting.length;
  }

  /** Whether an action runs. */
  get busy(): boolean {
    return this.running.size > 0;
  }

  /**
   * Disposes each object, even when one before it throws (its tensors are lost, the others' need not be), then
   * throws the first error: the bookkeeping is already done, so nothing is disposed twice or left waiting.
   */
  private disposeAll(objects: readonly Disposable[]): void {
    const errors: unknown[] = [];
    for (const object of objects) {
      this.disposed.add(object);
      try {
        object.dispose();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}
