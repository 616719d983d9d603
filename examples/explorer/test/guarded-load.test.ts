/**
 * The explorer's guarded fetches against a local server that answers late or never: a load stops at its time
 * limit with a message naming the URL and the limit, or at once when a newer load aborts it; a body that keeps
 * arriving, or that the caller reads late, is not cut off.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isCrpError } from '@crp/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardedLoad, LOAD_LIMITS, loadLimits } from '../src/guarded-load.js';

/** Responses held open by the routes that stall: ended when the tests are done. */
const held = new Set<ServerResponse>();
const server = createServer((req, res) => {
  held.add(res);
  res.on('close', () => held.delete(res));
  switch (req.url) {
    case '/never':
      return;
    case '/stall':
      // the answer and a first part of the body, then nothing
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write('first part');
      return;
    case '/drip': {
      // five parts 300 ms apart: 1.2 s in all, each wait far below the 1 s limit of the test
      res.writeHead(200, { 'content-type': 'text/plain' });
      let part = 0;
      const timer = setInterval(() => {
        res.write(`part ${part} `);
        if (++part === 5) {
          clearInterval(timer);
          res.end();
        }
      }, 300);
      return;
    }
    default:
      res.writeHead(200, { 'content-type': 'text/plain' }).end('all of it');
  }
});
let origin: string;

beforeAll(async () => {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((ok) => server.close(() => ok()));
});

describe('GuardedLoad', () => {
  it('stops a request that is never answered at the time limit, naming the URL and the limit', async () => {
    const load = new GuardedLoad('a model', 200);
    const started = Date.now();
    const err = await load.fetch(`${origin}/never`).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(isCrpError(err, 'unreachable')).toBe(true);
    expect((err as Error).message).toBe(
      `${origin}/never did not answer within 0.2 s (the time limit for a model): check the URL and the server, or give a slow server more time with ?timeout=<seconds> in the page's address`,
    );
    // the load is over: a later request of it does not start
    await expect(load.fetch(`${origin}/`)).rejects.toBe(err);
  });

  it('stops a body that stops arriving, and a step reading it throws the time limit, not a read error', async () => {
    const load = new GuardedLoad('an image', 300);
    const response = await load.fetch(`${origin}/stall`);
    expect(response.status).toBe(200);
    const err = await load.step(response.arrayBuffer()).catch((e: unknown) => e);
    expect(isCrpError(err, 'unreachable')).toBe(true);
    expect((err as Error).message).toMatch(
      /\/stall did not answer within 0\.3 s \(the time limit for an image\)/,
    );
  });

  it('does not cut off a body that keeps arriving for longer than the limit', async () => {
    const load = new GuardedLoad('a model', 1000);
    const started = Date.now();
    const response = await load.fetch(`${origin}/drip`);
    expect(await load.step(response.text())).toBe('part 0 part 1 part 2 part 3 part 4 ');
    expect(Date.now() - started).toBeGreaterThan(1000);
  });

  it('does not count the time the caller takes before it reads the body', async () => {
    const load = new GuardedLoad('an image', 100);
    const response = await load.fetch(`${origin}/`);
    await new Promise((ok) => setTimeout(ok, 400));
    expect(await load.step(response.text())).toBe('all of it');
    expect(load.stopReason()).toBeUndefined();
  });

  it('ends a waiting request at once when its signal is aborted, with the reason given', async () => {
    const newer = new AbortController();
    const load = new GuardedLoad('an image', 60_000, newer.signal);
    const reason = new Error('a newer image was asked for');
    const started = Date.now();
    const pending = load.fetch(`${origin}/never`).catch((e: unknown) => e);
    setTimeout(() => newer.abort(reason), 100);
    expect(await pending).toBe(reason);
    expect(Date.now() - started).toBeLessThan(10_000);
    // and a body being read
    const again = new AbortController();
    const reading = new GuardedLoad('an image', 60_000, again.signal);
    const response = await reading.fetch(`${origin}/stall`);
    const read = reading.step(response.arrayBuffer()).catch((e: unknown) => e);
    again.abort(reason);
    expect(await read).toBe(reason);
  });

  it('refuses a time limit that is not above 0', () => {
    expect(() => new GuardedLoad('a model', 0)).toThrow(/must be above 0 ms; got 0/);
    expect(() => new GuardedLoad('a model', Number.NaN)).toThrow(/must be above 0 ms; got NaN/);
  });
});

describe('loadLimits', () => {
  it('takes ?timeout= in seconds for both kinds of load, and the defaults without it', () => {
    expect(loadLimits(null)).toEqual({ model: 60_000, image: 20_000 });
    expect(loadLimits('2.5')).toEqual({ model: 2500, image: 2500 });
  });

  it('says when ?timeout= is no number of seconds above 0, and keeps the defaults', () => {
    for (const bad of ['', ' ', '0', '-3', 'soon', 'Infinity']) {
      const limits = loadLimits(bad);
      expect(limits.model, bad).toBe(LOAD_LIMITS.model);
      expect(limits.image, bad).toBe(LOAD_LIMITS.image);
      expect(limits.problem, bad).toBe(
        `timeout=${bad} in the address is no number of seconds above 0; loads wait up to 60 s for a model and 20 s for an image`,
      );
    }
  });
});
