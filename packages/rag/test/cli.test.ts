import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stemCacheFile } from '../src/node/stem-cache.js';
import {
  downloadPaper,
  embeddingFromSpec,
  INDEX_FILE,
  readIndexFile,
  resolvePaperSource,
} from '../src/node.js';
import { runCliCaptured, useCliFolder } from './helpers/cli-folder.js';
import { json, startFakeServer } from './helpers/fake-server.js';
import { makePdf } from './helpers/make-pdf.js';

const inRoot = useCliFolder();

const PAPER = makePdf(
  [['Relevance maximisation picks reference samples by relevance, not by activation.']],
  'RelMax',
);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// a German question whose extractive answer quotes the German passage, then the English one
const MIXED_EN =
  '# Vector databases\n\nA vector database stores embeddings so that the passages nearest to a question are found quickly.\n';
const MIXED_DE =
  '# Vektordatenbanken\n\nWir speichern Einbettungen in einer Vektor-Datenbank, weil Sprachmodelle nur eine begrenzte Anzahl an Token lesen.\n';
const MIXED_QUESTION = 'Warum speichert man Einbettungen in einer Vektor-Datenbank?';

describe('CLI', () => {
  it('index, ask (text and --json) and serve', async () => {
    const index = inRoot('idx');
    const i = await runCliCaptured(['index', inRoot('docs'), '--index', index, '--embedding', 'hash']);
    expect(i.code).toBe(0);
    // pages only for the PDF (2); a Markdown or text file is counted as a file, never as a page
    expect(i.out).toMatch(
      /indexed \d+ chunks from 4 files \(2 pages in 1 PDF, 2 Markdown files, 1 text file\) in /,
    );
    expect(i.err).toContain('embed');
    // index remembers the stems it computed, for the next command (ask, serve, index)
    const stems = stemCacheFile(inRoot('cache'));
    expect(await readFile(stems, 'utf8')).toContain('en\tshards\tshard\n');

    const again = await runCliCaptured(['index', inRoot('docs'), '--index', index]);
    expect(again.out).toContain('4 unchanged');
    expect(again.out).toContain('0 chunks embedded');

    const a = await runCliCaptured([
      'ask',
      'What shard size does the converter create by default?',
      '--index',
      index,
      '--llm',
      'none',
    ]);
    expect(a.code).toBe(0);
    expect(a.out).toContain('The command above creates shards of size 4 MB by default. [shards.pdf, p. 2]');
    expect(a.out).toContain('(extractive; answer in English)');
    expect(a.out).toMatch(/1\. \[shards\.pdf, p\. 2\] Converter Guide \[en\]/);
    // another --embedding than the index's: the way out, as options of the command line
    const other = await runCliCaptured(['ask', 'Shard size?', '--index', index, '--embedding', 'use-lite']);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/^crp-rag: embedding-mismatch: The index was built with embedding "hash-256"/);
    expect(other.err).toContain(
      'Leave out --embedding (ask then uses the one `crp-rag index` remembered), or index again with `crp-rag index <dir> --embedding use-lite`.',
    );

    const de = await runCliCaptured([
      'ask',
      'Why are embeddings stored in a vector database?',
      '--index',
      index,
      '--llm',
      'none',
    ]);
    expect(de.out).toContain('answer in German');
    expect(de.out).toMatch(/\[sub\/vektor\.md\] Vektordatenbanken \[de\]/);

    const j = await runCliCaptured([
      'ask',
      'Which rule is used for convolutional layers?',
      '--index',
      index,
      '--json',
      '--explain',
      '--top-k',
      '2',
      '--llm',
      'none',
    ]);
    const parsed = JSON.parse(j.out) as {
      sources: unknown[];
      explanation: { embeddingMap: unknown };
      language: string;
    };
    expect(parsed.sources).toHaveLength(2);
    expect(parsed.explanation.embeddingMap).toBeDefined();
    expect(parsed.language).toBe('en');
    // without --explain the explanation views are not computed (a plain answer comes faster)
    const plain = await runCliCaptured([
      'ask',
      'Which rule is used for convolutional layers?',
      '--index',
      index,
      '--json',
    ]);
    expect((JSON.parse(plain.out) as { explanation?: unknown }).explanation).toBeUndefined();
    const why = await runCliCaptured([
      'ask',
      'Which rule is used for convolutional layers?',
      '--index',
      index,
      '--explain',
    ]);
    expect(why.out).toMatch(/shared words: .*convolut/);

    const s = await runCliCaptured(['serve', '--index', index, '--port', '0', '--llm', 'none']);
    expect(s.out).toMatch(/serving \d+ chunks on http:\/\/127\.0\.0\.1:\d+\//);
    const url = /(http:\/\/\S+)\//.exec(s.out)![1]!;
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
    // serve remembers the stems of the questions it answered when it stops
    await rm(stems);
    const served = await fetch(`${url}/api/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'Which flavours of zebrafish exist?', explain: false }),
    });
    expect(served.status).toBe(200);
    await s.stop!();
    expect(await readFile(stems, 'utf8')).toContain('en\tzebrafish\tzebrafish\n');
  });

  it('ask prints the command a step announces as an indented block of its lines; --json says it is code', async () => {
    const docs = inRoot('howto');
    await mkdir(docs, { recursive: true });
    await writeFile(
      path.join(docs, 'hooks.md'),
      [
        '# Hooks',
        '',
        'To register the hook on every layer, run this loop:',
        '',
        '```python',
        'for layer in model.modules():',
        '    layer.register(hook)',
        '```',
      ].join('\n'),
    );
    const index = inRoot('howto-idx');
    const indexed = await runCliCaptured(['index', docs, '--index', index, '--embedding', 'hash']);
    expect(indexed.code).toBe(0);
    // one Markdown file: no pages at all
    expect(indexed.out).toMatch(/ chunks? from 1 file \(1 Markdown file\) in /);
    const question = 'How do I register the hook on every layer?';
    const a = await runCliCaptured(['ask', question, '--index', index, '--llm', 'none']);
    expect(a.out).toContain(
      [
        'To register the hook on every layer, run this loop:',
        '',
        '    for layer in model.modules():',
        '        layer.register(hook)',
        '[hooks.md]',
      ].join('\n'),
    );
    const j = await runCliCaptured(['ask', question, '--index', index, '--llm', 'none', '--json']);
    const parsed = JSON.parse(j.out) as { sentences: { kind: string; text: string }[] };
    expect(parsed.sentences.map((s) => s.kind)).toEqual(['prose', 'code']);
    expect(parsed.sentences[1]!.text).toBe(
      'for layer in model.modules():\n    layer.register(hook)\n[hooks.md]',
    );
  });

  it('an answer quoting a German and an English passage says both languages, not "answer in German"', async () => {
    const docs = inRoot('mixed');
    await mkdir(docs, { recursive: true });
    await writeFile(path.join(docs, 'vectors.md'), MIXED_EN);
    await writeFile(path.join(docs, 'vektor.md'), MIXED_DE);
    const index = inRoot('mixed-idx');
    expect((await runCliCaptured(['index', docs, '--index', index, '--embedding', 'hash'])).code).toBe(0);
    const a = await runCliCaptured(['ask', MIXED_QUESTION, '--index', index, '--llm', 'none']);
    expect(a.out).toContain('[vektor.md]');
    expect(a.out).toContain('[vectors.md]');
    expect(a.out).toContain('(extractive; quotes German and English)');
    const j = JSON.parse(
      (await runCliCaptured(['ask', MIXED_QUESTION, '--index', index, '--llm', 'none', '--json'])).out,
    ) as { quotedLanguages: string[] };
    expect(j.quotedLanguages).toEqual(['de', 'en']);
  });

  it('says what is wrong with bad input', async () => {
    expect((await runCliCaptured([])).code).toBe(2);
    expect((await runCliCaptured(['frobnicate'])).err).toContain('valid: index, add, ask, serve');
    expect(
      (await runCliCaptured(['ask', '', '--index', inRoot('none'), '--embedding', 'hash'])).err,
    ).toContain('needs a question');
    const empty = await runCliCaptured([
      'ask',
      'hello',
      '--index',
      inRoot('none'),
      '--embedding',
      'hash',
      '--llm',
      'none',
    ]);
    expect(empty.code).toBe(1);
    expect(empty.err).toContain('crp-rag: empty-index:');
    const long = await runCliCaptured(['ask', 'x'.repeat(10_000), '--index', inRoot('idx'), '--llm', 'none']);
    expect(long.code).toBe(1);
    expect(long.err).toContain(
      'invalid-argument: The question has 10000 characters; at most 2000 are allowed.',
    );
    expect(() => embeddingFromSpec('bert')).toThrow(/valid: use-lite, use-lite-contextual, hash/);
    expect((await runCliCaptured(['ask', 'x', '--llm', 'claude:x', '--index', inRoot('idx')])).err).toContain(
      'groq[:model], openai[:model], ollama[:model], llama-cpp:<file.gguf>, none',
    );
    expect((await runCliCaptured(['ask', 'x', '--top-k', '0', '--index', inRoot('idx')])).err).toContain(
      '--top-k',
    );
  });
});

describe('crp-rag add (papers from a local HTTP server)', () => {
  let attempts = 0;
  let server: Awaited<ReturnType<typeof startFakeServer>>;
  beforeAll(async () => {
    server = await startFakeServer((req, res) => {
      if (req.url === '/paper.pdf' || req.url === '/pdf/2101.00001v2') {
        res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': PAPER.byteLength });
        return res.end(PAPER);
      }
      if (req.url === '/flaky.pdf') {
        attempts++;
        if (attempts < 3) return json(res, 503, { error: 'busy' });
        res.writeHead(200, { 'content-type': 'application/pdf' });
        return res.end(PAPER);
      }
      if (req.url === '/login.pdf') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end('<!doctype html><html><body>Please log in</body></html>');
      }
      if (req.url === '/big.pdf') {
        res.writeHead(200, { 'content-type': 'application/pdf' }); // no content-length: counted while streaming
        return res.end(new Uint8Array(5000).fill(0x25));
      }
      if (req.url === '/slow.pdf') return; // never answers
      json(res, 404, { error: 'no such paper' });
    });
  });
  afterAll(() => server.close());

  it('downloads a paper into the corpus folder, indexes it and records its checksum in the index', async () => {
    const index = inRoot('idx');
    const r = await runCliCaptured(['add', `${server.url}/paper.pdf`, '--index', index]);
    expect(r.err).not.toMatch(/skipped|crp-rag:/);
    expect(r.code).toBe(0);
    const saved = inRoot('docs', 'paper.pdf');
    expect(new Uint8Array(await readFile(saved))).toEqual(PAPER);
    expect(r.out).toContain(`downloaded ${saved} (${PAPER.byteLength} bytes, sha256 ${sha(PAPER)})`);
    expect(r.out).toContain('1 added');
    const snap = await readIndexFile(index);
    expect(snap!.files['paper.pdf']!.origin).toMatchObject({
      url: `${server.url}/paper.pdf`,
      sha256: sha(PAPER),
      bytes: PAPER.byteLength,
    });
    expect(snap!.files['paper.pdf']!.hash).toBe(sha(PAPER));
    // the next plain index run keeps the origin
    await runCliCaptured(['index', inRoot('docs'), '--index', index]);
    expect((await readIndexFile(index))!.files['paper.pdf']!.origin?.sha256).toBe(sha(PAPER));
    const a = await runCliCaptured([
      'ask',
      'How are reference samples picked in relevance maximisation?',
      '--index',
      index,
      '--llm',
      'none',
    ]);
    expect(a.out).toContain('[paper.pdf, p. 1]');
  });

  it('arxiv:ID resolves to the PDF URL (base overridable); retries 503 answers with back-off', async () => {
    expect(resolvePaperSource('arxiv:2101.00001v2')).toEqual({
      url: 'https://arxiv.org/pdf/2101.00001v2',
      fileName: 'arxiv-2101.00001v2.pdf',
    });
    expect(() => resolvePaperSource('arxiv:not-an-id')).toThrow(/valid: arxiv:2101.00001/);
    const corpus = inRoot('papers');
    const p = await downloadPaper('arxiv:2101.00001v2', { corpusDir: corpus, arxivBaseUrl: server.url });
    expect(p).toMatchObject({
      file: 'arxiv-2101.00001v2.pdf',
      written: true,
      origin: { sha256: sha(PAPER) },
    });
    const again = await downloadPaper('arxiv:2101.00001v2', { corpusDir: corpus, arxivBaseUrl: server.url });
    expect(again.written).toBe(false);
    const flaky = await downloadPaper(`${server.url}/flaky.pdf`, {
      corpusDir: corpus,
      retries: 2,
      backoffMs: () => 10,
    });
    expect(attempts).toBe(3);
    expect(flaky.origin.sha256).toBe(sha(PAPER));
  });

  it('an HTML page instead of a PDF, a 404, an over-large file and a timeout are clear errors; nothing is saved and the index is untouched', async () => {
    const index = inRoot('idx');
    const before = await readFile(path.join(index, INDEX_FILE));
    const mtime = (await stat(path.join(index, INDEX_FILE))).mtimeMs;
    const files = await readdir(inRoot('docs'));

    const html = await runCliCaptured(['add', `${server.url}/login.pdf`, '--index', index]);
    expect(html.code).toBe(1);
    expect(html.err).toMatch(
      /unsupported-format: .*login\.pdf returned an HTML page \(text\/html; charset=utf-8\), not a PDF/,
    );

    const missing = await runCliCaptured(['add', `${server.url}/nope.pdf`, '--index', index]);
    expect(missing.err).toMatch(/not-found: .*answered HTTP 404/);

    const big = await runCliCaptured([
      'add',
      `${server.url}/big.pdf`,
      '--index',
      index,
      '--max-bytes',
      '1000',
    ]);
    expect(big.err).toMatch(/more than the limit of 1000 bytes/);

    const slow = await runCliCaptured([
      'add',
      `${server.url}/slow.pdf`,
      '--index',
      index,
      '--timeout',
      '200',
      '--retries',
      '1',
    ]);
    expect(slow.err).toMatch(
      /unreachable: Could not download .*slow\.pdf after 2 attempt\(s\): no answer within 200 ms/,
    );

    expect(await readdir(inRoot('docs'))).toEqual(files);
    expect(await readFile(path.join(index, INDEX_FILE))).toEqual(before);
    expect((await stat(path.join(index, INDEX_FILE))).mtimeMs).toBe(mtime);
  });
});
