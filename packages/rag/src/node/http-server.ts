import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CrpErrorCode, isCrpError } from '@crp/common';
import type { AnswerGenerator } from '../answer/llm-answer.js';
import type { RagAnswer, RagEngine } from '../rag-engine.js';
import { APP_JS, PAGE_HTML } from './page.js';

/** Options of {@link startRagServer}. */
export interface RagServerOptions {
  /** Default 127.0.0.1 (loopback only). */
  readonly host?: string;
  /** Default 0 (a free port). */
  readonly port?: number;
  /** Largest accepted request body; default 16 KiB. */
  readonly maxBodyBytes?: number;
  /** Longest accepted question; default the index's `maxQuestionChars` (2,000 characters). */
  readonly maxQuestionChars?: number;
  /** Answer generator for every question (default: the engine's, else extractive; `null`: extractive). */
  readonly generator?: AnswerGenerator | null;
}

/** A running server. */
export interface RagServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** HTTP status of each error code: the client's fault 4xx, a server or service that is down 503. */
const STATUS: Partial<Record<CrpErrorCode, number>> = {
  'invalid-argument': 400,
  'empty-index': 409,
  'embedding-mismatch': 409,
  'provider-config': 500,
  'provider-failed': 502,
  unreachable: 503,
  'store-failed': 503,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    ...(status === 413 ? { connection: 'close' } : {}),
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify({ error: { code, message } }));
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      reject(
        new HttpError(
          413,
          'body-too-large',
          `The request body has ${declared} bytes; at most ${max} are accepted.`,
        ),
      );
      req.resume();
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(
          new HttpError(
            413,
            'body-too-large',
            `The request body has more than ${max} bytes; at most ${max} are accepted.`,
          ),
        );
        // drain the rest without keeping it; the connection is closed after the answer
        req.removeAllListeners('data');
        req.resume();
      } else parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The answer as server-sent events over the POST response: `token` events (`{"text"}`) while a language model
 * writes, then one `answer` event (the {@link RagAnswer}, every sentence checked against the sources). The
 * status line waits for the first event, so a question refused before any text (unsupported language, a
 * model that is down) is still a plain 4xx/5xx JSON error; a failure mid-answer is an `error` event.
 */
async function streamAnswer(
  res: ServerResponse,
  ask: (onToken: (text: string) => void) => Promise<RagAnswer>,
): Promise<void> {
  const event = (name: string, data: unknown) => {
    if (!res.headersSent) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'self'",
      });
    }
    res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  let answer: RagAnswer;
  try {
    answer = await ask((text) => event('token', { text }));
  } catch (error) {
    if (!res.headersSent) throw error;
    const code = isCrpError(error) ? error.code : 'internal';
    const message = isCrpError(error) ? error.message : 'The server failed to answer; see its log.';
    event('error', { error: { code, message } });
    res.end();
    return;
  }
  event('answer', answer);
  res.end();
}

/**
 * Serves the web page (`/`), its script (`/app.js`), `GET /api/health` and `POST /api/ask`
 * (`{"question": "...", "topK": 5}` → the {@link RagAnswer} as JSON; with `"stream": true` as server-sent events
 * (`token` events while a model writes, then one `answer` event); `"generate": false` answers without the model). Binds to 127.0.0.1 by default.
 * Bad requests get 4xx JSON errors `{error: {code, message}}`.
 */
export async function startRagServer(engine: RagEngine, options: RagServerOptions = {}): Promise<RagServer> {
  const maxBody = options.maxBodyBytes ?? 16 * 1024;
  const maxQuestion = options.maxQuestionChars ?? engine.index.maxQuestionChars;
  let queue: Promise<unknown> = Promise.resolve();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? '/';
    const pathPart = raw.split('?')[0]!;
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathPart);
    } catch {
      throw new HttpError(400, 'bad-path', 'The request path is not valid percent-encoding.');
    }
    if (decoded.split(/[\\/]/).includes('..') || decoded.includes('\0')) {
      throw new HttpError(
        400,
        'bad-path',
        'Paths with ".." segments are not allowed; valid paths: /, /app.js, /api/health, /api/ask.',
      );
    }
    const route = `${req.method} ${decoded}`;
    if (route === 'GET /' || route === 'GET /index.html')
      return send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
    if (route === 'GET /app.js') return send(res, 200, 'text/javascript; charset=utf-8', APP_JS);
    if (route === 'GET /api/health') {
      return send(
        res,
        200,
        'application/json; charset=utf-8',
        JSON.stringify({
          ok: true,
          chunks: engine.index.chunks.length,
          files: Object.keys(engine.index.files).length,
        }),
      );
    }
    if (decoded === '/api/ask') {
      if (req.method !== 'POST')
        throw new HttpError(
          405,
          'method-not-allowed',
          'Use POST /api/ask with a JSON body {"question": "..."}.',
        );
      const type = String(req.headers['content-type'] ?? '');
      if (!type.startsWith('application/json')) {
        throw new HttpError(
          415,
          'unsupported-media-type',
          'Send the question as application/json: {"question": "..."}.',
        );
      }
      const text = await readBody(req, maxBody);
      let body: {
        question?: unknown;
        topK?: unknown;
        explain?: unknown;
        stream?: unknown;
        generate?: unknown;
      };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new HttpError(400, 'bad-json', 'The body is not valid JSON; send {"question": "..."}.');
      }
      const question = typeof body?.question === 'string' ? body.question.trim() : '';
      if (!question)
        throw new HttpError(
          400,
          'invalid-argument',
          'The question is empty; send {"question": "<non-empty text>"}.',
        );
      if (question.length > maxQuestion) {
        throw new HttpError(
          400,
          'invalid-argument',
          `The question has ${question.length} characters; at most ${maxQuestion} are allowed.`,
        );
      }
      const topK = body.topK === undefined ? 5 : Number(body.topK);
      if (!Number.isInteger(topK) || topK < 1 || topK > 20)
        throw new HttpError(400, 'invalid-argument', 'topK must be an integer from 1 to 20.');
      if (body.explain !== undefined && typeof body.explain !== 'boolean')
        throw new HttpError(400, 'invalid-argument', 'explain must be true or false.');
      for (const key of ['stream', 'generate'] as const)
        if (body[key] !== undefined && typeof body[key] !== 'boolean')
          throw new HttpError(400, 'invalid-argument', `${key} must be true or false.`);
      // the page asks for the answer first and for the (slower) explanation views after it; that second
      // request says generate: false, so a language model does not write the answer twice
      const explain = body.explain ?? true;
      const generator = body.generate === false ? null : options.generator;
      const ask = (onToken?: (text: string) => void) => {
        const run = queue.then(() =>
          engine.ask(question, {
            topK,
            explain,
            ...(generator !== undefined ? { generator } : {}),
            ...(onToken ? { onToken } : {}),
          }),
        );
        queue = run.catch(() => undefined);
        return run;
      };
      if (body.stream === true) return streamAnswer(res, ask);
      const answer = await ask();
      return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(answer));
    }
    throw new HttpError(
      404,
      'not-found',
      `No route ${req.method} ${decoded}; valid: GET /, GET /app.js, GET /api/health, POST /api/ask.`,
    );
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      if (error instanceof HttpError) return sendError(res, error.status, error.code, error.message);
      if (isCrpError(error)) return sendError(res, STATUS[error.code] ?? 500, error.code, error.message);
      sendError(res, 500, 'internal', 'The server failed to answer; see its log.');
      console.error(error);
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
