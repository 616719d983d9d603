import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { CrpError, fileError } from '@crp/common';
import type { ConnectionOptions } from 'bullmq';

/** Where the queue lives: a Redis server (plain TCP or TLS), database and credentials. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** PEM file of the CA that signed a rediss:// server's certificate, besides the system's (`CRP_REDIS_CA_FILE`) */
  caFile?: string;
  /** the URL with the password replaced by `***`: the only form ever printed */
  display: string;
}

/** Environment variable read for the password when the URL has none (keeps it out of `ps` listings). */
export const PASSWORD_ENV = 'CRP_REDIS_PASSWORD';

/** Environment variable with the PEM file of a private CA for rediss:// (e.g. a cluster's own CA). */
export const CA_FILE_ENV = 'CRP_REDIS_CA_FILE';

/**
 * Parses `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS). Without a password in the URL,
 * `CRP_REDIS_PASSWORD` is used when set; with rediss://, `CRP_REDIS_CA_FILE` names a CA certificate (PEM) to
 * trust besides the system's. Errors and displays never contain the password.
 */
export function parseRedisUrl(
  url: string,
  env: Record<string, string | undefined> = process.env,
): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    u = new URL('invalid://');
  }
  const ok = (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
  const db = u.pathname === '' || u.pathname === '/' ? 0 : Number(u.pathname.slice(1));
  const port = u.port === '' ? 6379 : Number(u.port);
  if (!ok || !Number.isInteger(db) || db < 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CrpError(
      'invalid-argument',
      `the queue must be redis://[user:password@]host:port/db or rediss://... (TLS), got '${redactUrl(url)}'`,
    );
  }
  const password = u.password !== '' ? decodeURIComponent(u.password) : env[PASSWORD_ENV] || undefined;
  const username = u.username !== '' ? decodeURIComponent(u.username) : undefined;
  const caFile = u.protocol === 'rediss:' ? env[CA_FILE_ENV] || undefined : undefined;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    tls: u.protocol === 'rediss:',
    ...(caFile === undefined ? {} : { caFile }),
    display: redactUrl(url),
  };
}

/** A Redis URL with its password (if any) replaced by `***`. Text that is no URL comes back with anything
 * between `//` and `@` hidden. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return colon < 0 ? `${scheme}${auth}@` : `${scheme}${auth.slice(0, colon)}:***@`;
  });
}

/** `text` with every occurrence of the target's password replaced by `***` (for messages of other libraries). */
export function redact(text: string, target: Pick<RedisTarget, 'password'>): string {
  const p = target.password;
  return p === undefined || p === '' ? text : text.split(p).join('***');
}

/**
 * ioredis options for the target: TLS for rediss:// with the system's CAs, and the CA of `caFile` when given.
 *
 * @throws CrpError `not-found` / `read-failed` when `caFile` cannot be read
 */
export function redisOptions(target: RedisTarget, extra: Record<string, unknown> = {}): ConnectionOptions {
  let tls: Record<string, unknown> | undefined;
  if (target.tls) {
    tls = { servername: target.host };
    if (target.caFile !== undefined) {
      try {
        // the system's CAs stay trusted: `ca` replaces them, so they are passed along
        tls.ca = [readFileSync(target.caFile, 'utf8'), ...rootCertificates];
      } catch (err) {
        throw fileError('read', target.caFile, err, `CA certificate (${CA_FILE_ENV})`);
      }
    }
  }
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(tls === undefined ? {} : { tls }),
    ...extra,
  };
}
