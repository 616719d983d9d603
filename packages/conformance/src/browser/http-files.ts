import { CrpError } from '@crp/common';
import type { ReferenceFiles } from '../reference-files.js';

/**
 * The reference data seen from the page of `pnpm conformance --browser`: the server (server.ts) hands out the
 * files of the reference directories under `/fs/<path>` (and a directory's names as JSON under
 * `/fs/<path>?list`), so the page reads the same paths as the Node run and its messages name the same files.
 */
export function httpFiles(origin: string): ReferenceFiles {
  const url = (path: string, query = '') =>
    `${origin}/fs${path.split('/').map(encodeURIComponent).join('/')}${query}`;
  async function get(path: string, query = ''): Promise<Response | undefined> {
    const response = await fetch(url(path, query));
    if (response.status === 404) return undefined;
    if (!response.ok) {
      throw new CrpError(
        'read-failed',
        `cannot read ${path}: HTTP ${response.status} ${await response.text()}`,
        {
          details: { path },
        },
      );
    }
    return response;
  }
  return {
    async readText(path) {
      return (await get(path))?.text();
    },
    async readBytes(path) {
      const response = await get(path);
      return response === undefined ? undefined : new Uint8Array(await response.arrayBuffer());
    },
    async list(dir) {
      return (await (await get(dir, '?list'))?.json()) as string[] | undefined;
    },
    async exists(path) {
      return (await fetch(url(path), { method: 'HEAD' })).ok;
    },
  };
}
