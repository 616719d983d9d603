import { fork } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { writeFileAtomic } from '@crp/common/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSnapshot,
  encodeSnapshot,
  type IndexSnapshot,
  readIndexFile,
  writeIndexFile,
} from '../src/node.js';
import { tempDir } from './helpers/temp-dir.js';

const snap = (embeddingId: string): IndexSnapshot => ({
  embeddingId,
  dimensions: 3,
  chunking: { chunkSize: 200, chunkOverlap: 40 },
  files: {},
  chunks: [
    {
      id: 'a#0',
      text: 'alpha',
      metadata: { file: 'a.md', title: 'A', startChar: 0, endChar: 5, language: 'en' },
    },
  ],
  vectors: [new Float32Array([1, 0, 0])],
  syncedStores: [],
  updatedAt: '2024-01-01T00:00:00.000Z',
});

let dir = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(() => cleanup());

describe('on-disk store', () => {
  it('round-trips a snapshot', () => {
    const s = snap('x');
    const back = decodeSnapshot(Buffer.concat(encodeSnapshot(s)));
    expect(back.embeddingId).toBe('x');
    expect(back.chunks).toEqual(s.chunks);
    expect(Array.from(back.vectors[0]!)).toEqual([1, 0, 0]);
  });

  it('reports a truncated or foreign file as corrupt-file', () => {
    const buf = Buffer.concat(encodeSnapshot(snap('x')));
    expect(() => decodeSnapshot(buf.subarray(0, buf.length - 2))).toThrow(
      expect.objectContaining({ code: 'corrupt-file' }),
    );
    expect(() => decodeSnapshot(Buffer.from('hello world, not an index'))).toThrow(/not a readable/);
  });

  it('version 3 keeps the texts out of the JSON and decodes one when it is read; version 2 files still open', () => {
    const texts = ['Größe der Vektoren', 'emoji 🙂 and “quotes”', '', 'plain'];
    const s = {
      ...snap('x'),
      dimensions: 2,
      chunks: texts.map((text, i) => ({
        id: `a.md#0:${i}`,
        text,
        metadata: { file: 'a.md', title: 'A', startChar: i, endChar: i + 1, language: 'de' as const },
      })),
      vectors: texts.map((_, i) => new Float32Array([i, -i])),
    };
    const bytes = concat(encodeSnapshot(s));
    const json = new TextDecoder().decode(
      bytes.subarray(28, 28 + new DataView(bytes.buffer).getUint32(8, true)),
    );
    expect(json).not.toContain('Vektoren');
    const back = decodeSnapshot(bytes);
    expect(Object.getOwnPropertyDescriptor(back.chunks[0], 'text')?.get).toBeTypeOf('function');
    expect(back.chunks.map((c) => c.text)).toEqual(texts);
    expect(back.chunks).toEqual(s.chunks);
    // key order and serialisation as a chunk written before
    expect(JSON.stringify(back.chunks)).toBe(JSON.stringify(s.chunks));
    expect(back.vectors.map((v) => Array.from(v))).toEqual([
      [0, -0],
      [1, -1],
      [2, -2],
      [3, -3],
    ]);
    // offsets that do not add up are a corrupt file
    const broken = bytes.slice();
    const textBytes = new DataView(bytes.buffer).getUint32(24, true);
    // the third text's start, past the fourth's
    new DataView(broken.buffer).setInt32(bytes.byteLength - textBytes - 5 * 4 + 2 * 4, 9999, true);
    expect(() => decodeSnapshot(broken)).toThrow(expect.objectContaining({ code: 'corrupt-file' }));
    // version 2 (the texts in the JSON, no texts section) as the previous release wrote it
    const { vectors, ...rest } = s;
    const json2 = new TextEncoder().encode(JSON.stringify(rest));
    const head = new Uint8Array(24);
    head.set(new TextEncoder().encode('CRPRAG02'));
    const view = new DataView(head.buffer);
    view.setUint32(8, json2.byteLength, true);
    view.setUint32(12, 2, true);
    view.setUint32(16, vectors.length, true);
    view.setUint32(20, 0, true);
    const data = new Float32Array(vectors.flatMap((v) => [...v]));
    const v2 = concat([
      head,
      json2,
      new Uint8Array((4 - (json2.byteLength % 4)) % 4),
      new Uint8Array(data.buffer),
    ]);
    const old = decodeSnapshot(v2);
    expect(old.chunks).toEqual(s.chunks);
    expect(old.vectors.map((v) => Array.from(v))).toEqual(back.vectors.map((v) => Array.from(v)));
  });

  it('returns undefined when a folder has no index yet', async () => {
    expect(await readIndexFile(path.join(dir, 'empty'))).toBeUndefined();
  });

  it('a failed write leaves the previous file and no temporary file', async () => {
    const file = path.join(dir, 'atomic.bin');
    await writeFileAtomic(file, [Buffer.from('old')]);
    const bad = {
      get byteLength(): number {
        throw new Error('disk on fire');
      },
    } as unknown as Uint8Array;
    await expect(writeFileAtomic(file, [Buffer.from('new'), bad])).rejects.toMatchObject({
      code: 'write-failed',
      message: expect.stringContaining('disk on fire'),
    });
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(file, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a process killed mid-write leaves the previous index readable', async () => {
    const crashDir = path.join(dir, 'crash');
    await writeIndexFile(crashDir, snap('old'));
    const require = createRequire(import.meta.url);
    const tsx = require.resolve('tsx');
    const tmpFiles = async () => (await readdir(crashDir)).filter((n) => n.endsWith('.tmp'));
    // The kill must land while a write is under way: the writer still running and its temporary file left
    // behind. A kill in the short gap between two writes proves nothing, so that case tries again.
    let midWrite = false;
    for (let attempt = 0; attempt < 3 && !midWrite; attempt++) {
      const before = new Set(await tmpFiles());
      const child = fork(path.join(import.meta.dirname, 'helpers/write-loop.ts'), [crashDir], {
        execArgv: ['--import', tsx],
        stdio: 'ignore',
      });
      const exited = new Promise<NodeJS.Signals | null>((r) =>
        child.once('exit', (_code, signal) => r(signal)),
      );
      try {
        await Promise.race([new Promise((resolve) => child.once('message', resolve)), exited]);
        // wait until the temporary file exists, then kill without warning
        const deadline = Date.now() + 20_000;
        let writing = false;
        while (!writing && Date.now() < deadline && child.exitCode === null) {
          writing = (await tmpFiles()).some((n) => !before.has(n));
          if (!writing) await new Promise((r) => setTimeout(r, 2));
        }
        expect(child.exitCode, 'the writer exited before it was killed').toBeNull();
        expect(writing, 'the writer opened no temporary file within 20 s').toBe(true);
      } finally {
        child.kill('SIGKILL');
      }
      expect(await exited).toBe('SIGKILL');
      midWrite = (await tmpFiles()).some((n) => !before.has(n));
    }
    expect(midWrite, 'no kill landed during a write in 3 attempts').toBe(true);
    const back = await readIndexFile(crashDir);
    // either the old one or a complete new one, never a torn file
    expect(['old', 'new']).toContain(back?.embeddingId);
    expect(back!.chunks.length).toBe(back!.vectors.length);
    // a stray temporary file from the crash does not disturb the next writer
    await writeIndexFile(crashDir, snap('after'));
    expect((await readIndexFile(crashDir))?.embeddingId).toBe('after');
  }, 60_000);
});

describe('saved index terms', () => {
  it('an index saves its chunks index terms; opening uses them, and analyses again when they are stale', async () => {
    const { HashEmbedding, RagIndex } = await import('../src/index.js');
    const embedding = new HashEmbedding();
    const index = new RagIndex({ embedding, translator: null });
    await index.updateFiles([
      { file: 'a.md', bytes: new TextEncoder().encode('# Rules\n\nThe epsilon rule stabilises relevance.') },
      { file: 'b.md', bytes: new TextEncoder().encode('# Vektoren\n\nDie Datenbank speichert Vektoren.') },
    ]);
    const saved = index.snapshot.terms!;
    expect(saved.chunks).toHaveLength(index.chunks.length);
    // the saved ids spell the same terms the analyser gives
    index.chunks.forEach((_, i) => {
      expect(Array.from(saved.chunks[i]!, (id) => saved.vocabulary[id])).toEqual(index.termsAt(i));
    });
    const ask = (x: InstanceType<typeof RagIndex>) =>
      x.search('epsilon rule', { topK: 2 }).then((hits) => hits.map((h) => [h.chunk.id, h.score]));
    const reopened = new RagIndex({ embedding, translator: null, snapshot: index.snapshot });
    expect(await ask(reopened)).toEqual(await ask(index));
    // terms saved under another analysis (here: tampered) are not trusted: analysed again, same result
    const stale = {
      ...index.snapshot,
      terms: { ...saved, key: 'other', vocabulary: saved.vocabulary.map(() => 'x') },
    };
    const again = new RagIndex({ embedding, translator: null, snapshot: stale });
    expect(await ask(again)).toEqual(await ask(index));
    expect(again.snapshot.terms!.key).toBe(saved.key);
    // and they survive the file format (ids as int32 after the vectors, not in the JSON)
    const bytes = concat(encodeSnapshot(index.snapshot));
    expect(new TextDecoder('latin1').decode(bytes.subarray(0, 8))).toBe('CRPRAG04');
    // each chunk's ids come back as a view into the file's bytes (no array per chunk), with the same ids
    const decoded = decodeSnapshot(bytes).terms!;
    const [first, second] = decoded.chunks as Int32Array[];
    expect(first).toBeInstanceOf(Int32Array);
    expect(first!.buffer).toBe(second!.buffer);
    const { postings: _, ...decodedTerms } = decoded;
    expect({ ...decodedTerms, chunks: decodedTerms.chunks.map((c) => Array.from(c)) }).toEqual(saved);
    expect(new TextDecoder().decode(bytes)).not.toContain('"chunks":[[');
    // an index written before (version 1: the term ids in the JSON) still opens, with the same terms
    const { vectors, ...rest } = index.snapshot;
    const json = new TextEncoder().encode(JSON.stringify(rest));
    const head = new Uint8Array(20);
    head.set(new TextEncoder().encode('CRPRAG01'));
    new DataView(head.buffer).setUint32(8, json.byteLength, true);
    new DataView(head.buffer).setUint32(12, index.snapshot.dimensions, true);
    new DataView(head.buffer).setUint32(16, vectors.length, true);
    const data = new Float32Array(vectors.flatMap((v) => [...v]));
    const v1 = concat([
      head,
      json,
      new Uint8Array((4 - (json.byteLength % 4)) % 4),
      new Uint8Array(data.buffer),
    ]);
    const old = decodeSnapshot(v1);
    expect(old.terms).toEqual(saved);
    expect(old.vectors.map((v) => [...v])).toEqual(vectors.map((v) => [...v]));
    // a term section that does not add up is a corrupt file
    const cut = bytes.slice(0, bytes.length - 4);
    expect(() => decodeSnapshot(cut)).toThrow(expect.objectContaining({ code: 'corrupt-file' }));
  });
});

describe('saved inverted lists (version 4)', () => {
  it('BM25 opens from the postings in the file and scores exactly as when it counts them; version 3 files still open; damaged postings are a corrupt file', async () => {
    const { Bm25Index, HashEmbedding, RagIndex, analyzeQuery } = await import('../src/index.js');
    const { termPostings } = await import('../src/retrieval/bm25.js');
    const index = new RagIndex({ embedding: new HashEmbedding(), translator: null });
    await index.updateFiles([
      {
        file: 'a.md',
        bytes: new TextEncoder().encode(
          '# Rules\n\nThe epsilon rule stabilises relevance. The epsilon rule adds epsilon.\n\n## Gamma\n\nThe gamma rule favours positive contributions.',
        ),
      },
      { file: 'b.md', bytes: new TextEncoder().encode('# Vektoren\n\nDie Datenbank speichert Vektoren.') },
      { file: 'c.md', bytes: new TextEncoder().encode('Relevance of a rule, relevance of a concept.') },
    ]);
    const saved = index.snapshot.terms!;
    const bytes = concat(encodeSnapshot(index.snapshot));
    const decoded = decodeSnapshot(bytes);
    const postings = decoded.terms!.postings!;
    // views of the file's bytes, as counted from the chunks' ids
    expect(postings.docs.buffer).toBe(bytes.buffer);
    const counted = termPostings(saved.vocabulary.length, saved.chunks);
    expect([...postings.offsets]).toEqual([...counted.offsets]);
    expect([...postings.docs]).toEqual([...counted.docs]);
    expect([...postings.tfs]).toEqual([...counted.tfs]);
    // hand-checked: "epsilon" is in the first chunk only, three times
    const epsilon = saved.vocabulary.indexOf('en:epsilon');
    const at = postings.offsets[epsilon]!;
    expect(postings.offsets[epsilon + 1]! - at).toBe(1);
    expect(postings.tfs[at]).toBe(3);
    const fromFile = new Bm25Index(decoded.terms!, {}, decoded.terms!.lengths);
    const fromIds = new Bm25Index({ vocabulary: saved.vocabulary, chunks: saved.chunks }, {}, saved.lengths);
    for (const q of ['epsilon rule relevance', 'gamma positive', 'Vektoren Datenbank', 'nothing here']) {
      const { concepts } = analyzeQuery(q);
      expect([...fromFile.scoreConcepts(concepts)], q).toEqual([...fromIds.scoreConcepts(concepts)]);
    }
    const search = (x: InstanceType<typeof RagIndex>) =>
      x.search('epsilon rule relevance', { topK: 3 }).then((hits) => hits.map((h) => [h.chunk.id, h.score]));
    const reopened = new RagIndex({ embedding: new HashEmbedding(), translator: null, snapshot: decoded });
    expect(await search(reopened)).toEqual(await search(index));
    // version 3, as the previous release wrote it: no postings section, a 28-byte header
    const view = new DataView(bytes.buffer);
    const postingBytes = view.getUint32(28, true) * 4;
    const textBytes = view.getUint32(24, true);
    const textsStart = bytes.byteLength - textBytes;
    const v3 = concat([
      bytes.subarray(0, 28),
      bytes.subarray(32, textsStart - postingBytes),
      bytes.subarray(textsStart),
    ]);
    v3.set(new TextEncoder().encode('CRPRAG03'));
    // (the padding after the JSON depends only on its length: the sections stay aligned)
    const old = decodeSnapshot(v3);
    expect(old.terms!.postings).toBeUndefined();
    expect(
      await search(new RagIndex({ embedding: new HashEmbedding(), translator: null, snapshot: old })),
    ).toEqual(await search(index));
    // a document number past the last chunk, or frequencies of 0, are a corrupt file
    const postingStart = textsStart - postingBytes;
    const docsStart = postingStart + (saved.vocabulary.length + 1) * 4;
    for (const [offset, value] of [
      [docsStart, 99],
      [docsStart + postings.docs.length * 4, 0],
      [postingStart, 1],
    ] as const) {
      const broken = bytes.slice();
      new DataView(broken.buffer).setInt32(offset, value, true);
      expect(() => decodeSnapshot(broken), `${offset}`).toThrow(
        expect.objectContaining({ code: 'corrupt-file' }),
      );
    }
  });
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
