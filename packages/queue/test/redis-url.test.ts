import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redactUrl } from '../src/index.js';

describe('Redis URLs', () => {
  it('parse host, port, database, credentials and TLS', () => {
    expect(parseRedisUrl('redis://10.0.0.5:6380/2', {})).toEqual({
      host: '10.0.0.5',
      port: 6380,
      db: 2,
      tls: false,
      display: 'redis://10.0.0.5:6380/2',
    });
    expect(parseRedisUrl('rediss://worker:p%40ss@redis.example:6379', {})).toEqual({
      host: 'redis.example',
      port: 6379,
      db: 0,
      username: 'worker',
      password: 'p@ss',
      tls: true,
      display: 'rediss://worker:***@redis.example:6379',
    });
    expect(parseRedisUrl('redis://h', {})).toMatchObject({ port: 6379, db: 0 });
  });

  it('take the password from CRP_REDIS_PASSWORD when the URL has none (keeps it out of process listings)', () => {
    const t = parseRedisUrl('redis://h:1/0', { CRP_REDIS_PASSWORD: 'from-env' });
    expect(t.password).toBe('from-env');
    expect(t.display).toBe('redis://h:1/0');
    expect(parseRedisUrl('redis://:url@h:1/0', { CRP_REDIS_PASSWORD: 'from-env' }).password).toBe('url');
  });

  it('refuse other schemes and bad ports or databases, without showing the password', () => {
    for (const bad of ['http://u:pw@h:1/0', 'redis://u:pw@h:99999/0', 'redis://u:pw@h:1/x', 'h:6379', '']) {
      let message = '';
      try {
        parseRedisUrl(bad, {});
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/redis:\/\/\[user:password@\]host:port\/db/);
      expect(message).not.toContain(':pw@');
    }
    expect(redactUrl('redis://:pw@h:1/0')).toBe('redis://:***@h:1/0');
    expect(redactUrl('redis://user@h:1/0')).toBe('redis://user@h:1/0');
  });
});
