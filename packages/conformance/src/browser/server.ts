import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';

/** What the page server hands out: the runner page, its script, the wasm binaries, the reference files. */
export interface PageServerOptions {
  /** The HTML of the page (served at `/`). */
  html: string;
  /** The bundled page script (served at `/runner.js`). */
  script: string;
  /** Folder of the TF.js wasm binaries (served under `/wasm/`). */
  wasmDir: string;
  /** Directories whose files the page may read under `/fs/<absolute path>` (nothing outside them). */
  roots: string[];
}

export interface PageServer {
  origin: string;
  close(): Promise<void>;
}

/** Cross-origin isolation: the wasm backend may then use threads (SharedArrayBuffer). */
const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head = false): void {
  res.writeHead(status, { ...ISOLATION, 'content-type': type });
  res.end(head ? undefined : body);
}

function inside(root: string, path: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * Serves the conformance page on 127.0.0.1 (a free port): only GET and HEAD, only the page, its script, the
 * wasm binaries and files inside the reference directories (a directory's names as JSON with `?list`).
 */
export async function startPageServer(options: PageServerOptions): Promise<PageServer> {
  const roots = await Promise.all(options.roots.map((r) => realpath(r)));
  const server: Server = createServer((req, res) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) return send(res, 405, 'text/plain', 'GET or HEAD only');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(url.pathname);
    void (async () => {
      if (path === '/') return send(res, 200, 'text/html; charset=utf-8', options.html, head);
      if (path === '/runner.js') return send(res, 200, 'text/javascript', options.script, head);
      if (path === '/favicon.ico') return send(res, 204, 'text/plain', '', head);
      if (path.startsWith('/wasm/') && /^[\w.-]+\.wasm$/.test(path.slice(6))) {
        return send(res, 200, 'application/wasm', await readFile(join(options.wasmDir, path.slice(6))), head);
      }
      if (path.startsWith('/fs/')) {
        const file = resolve(path.slice(3));
        let real: string;
        try {
          real = await realpath(file);
        } catch {
          return send(res, 404, 'text/plain', `${file} does not exist`, head);
        }
        if (!roots.some((root) => inside(root, real))) {
          return send(res, 403, 'text/plain', `${file} is outside the reference directories`, head);
        }
        if (url.searchParams.has('list')) {
          if (!(await stat(real)).isDirectory()) return send(res, 404, 'text/plain', 'not a directory', head);
          return send(res, 200, 'application/json', JSON.stringify(await readdir(real)), head);
        }
        if (!(await stat(real)).isFile()) return send(res, 404, 'text/plain', `${file} is not a file`, head);
        return send(res, 200, 'application/json', await readFile(real), head);
      }
      send(res, 404, 'text/plain', `${path}: no such page`, head);
    })().catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain', err instanceof Error ? err.message : String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
