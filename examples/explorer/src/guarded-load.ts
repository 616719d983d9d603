/**
 * Fetches of one model or image load that cannot keep the page busy for ever: they stop when a newer load
 * replaces this one (the caller's AbortSignal, whose reason is what the load then throws) or when the server keeps
 * the page waiting longer than a time limit (a CrpError naming the URL and the limit).
 */
import { CrpError } from '@crp/common';

/** How long a load may wait for the server, in milliseconds, by default. */
export const LOAD_LIMITS = { model: 60_000, image: 20_000 } as const;

/** The limits of model and image loads from the page's `?timeout=<seconds>` (both), the defaults without it; when
 * it is no number of seconds above 0, the defaults and `problem`, the message that says so. */
export function loadLimits(seconds: string | null): { model: number; image: number; problem?: string } {
  if (seconds === null) return { ...LOAD_LIMITS };
  const value = Number(seconds);
  if (seconds.trim() === '' || !(value > 0) || !Number.isFinite(value)) {
    return {
      ...LOAD_LIMITS,
      problem: `timeout=${seconds} in the address is no number of seconds above 0; loads wait up to ${LOAD_LIMITS.model / 1000} s for a model and ${LOAD_LIMITS.image / 1000} s for an image`,
    };
  }
  return { model: value * 1000, image: value * 1000 };
}

export class GuardedLoad {
  /** Set when a request of this load waited too long: every later step of the load throws it. */
  private timedOut: CrpError | undefined;

  /**
   * @param what what is loaded, for the message ('a model', 'an image')
   * @param limitMs the longest wait for the server: for the answer to a request, then for each part of its body
   *   (a large model that keeps arriving is not cut off, a server that stops sending is)
   * @param signal aborted when a newer load replaces this one
   */
  constructor(
    readonly what: string,
    readonly limitMs: number,
    readonly signal?: AbortSignal,
  ) {
    if (!(limitMs > 0)) {
      throw new CrpError('invalid-argument', `the time limit of a load must be above 0 ms; got ${limitMs}`);
    }
  }

  /** Why the load stopped (the signal's reason, or the time limit), or undefined while it may go on. */
  stopReason(): unknown {
    if (this.signal?.aborted) return this.signal.reason;
    return this.timedOut;
  }

  /** Throws why the load stopped, if it did. */
  check(): void {
    const reason = this.stopReason();
    if (reason !== undefined) throw reason;
  }

  /** Awaits a step of the load (reading a body, building from it); when the load stopped meanwhile, the step's
   * own error (a network error, a failed read) gives way to the reason it stopped. */
  async step<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw this.stopReason() ?? err;
    }
  }

  /** `fetch`, stopped by the signal or the time limit; the body of the response is watched the same way. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    this.check();
    const request = new AbortController();
    const onAbort = () => request.abort(this.signal!.reason);
    this.signal?.addEventListener('abort', onAbort, { once: true });
    const release = () => this.signal?.removeEventListener('abort', onAbort);
    // the clock runs only while the page waits for the server: not while the caller has yet to read the body
    const waiting = async <T>(work: Promise<T>): Promise<T> => {
      const timer = setTimeout(() => {
        this.timedOut ??= new CrpError(
          'unreachable',
          `${url} did not answer within ${this.limitMs / 1000} s (the time limit for ${this.what}): check the URL and the server, or give a slow server more time with ?timeout=<seconds> in the page's address`,
          { details: { url, limitMs: this.limitMs } },
        );
        request.abort(this.timedOut);
      }, this.limitMs);
      try {
        return await work;
      } catch (err) {
        release();
        throw this.stopReason() ?? err;
      } finally {
        clearTimeout(timer);
      }
    };
    const response = await waiting(fetch(url, { ...init, signal: request.signal }));
    if (response.body === null) {
      release();
      return response;
    }
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const part = await waiting(reader.read());
        if (part.done) {
          release();
          controller.close();
        } else controller.enqueue(part.value);
      },
      cancel: (reason) => {
        release();
        return reader.cancel(reason);
      },
    });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }
}
