import type { ProgressCallback } from '@crp/common';
import { progressTracker } from '@crp/common';
import { analyze } from '../text/analyzer.js';
import { detectLanguage } from '../text/language.js';
import { type EmbeddingProvider, normalizeVector } from './embedding-provider.js';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A lexical "embedding": stemmed terms hashed into `dimensions` buckets (signed), unit length. Instant,
 * deterministic and runs anywhere (a browser too), with no semantics beyond shared words; for tests and for
 * machines where even the small default model is too slow.
 */
export class HashEmbedding implements EmbeddingProvider {
  readonly id: string;
  readonly dimensions: number;
  constructor(options: { dimensions?: number } = {}) {
    this.dimensions = options.dimensions ?? 256;
    this.id = `hash-${this.dimensions}`;
  }
  async embed(texts: readonly string[], onProgress?: ProgressCallback): Promise<Float32Array[]> {
    const tick = progressTracker(texts.length, onProgress, { unit: 'texts' });
    return texts.map((text) => {
      const v = new Float32Array(this.dimensions);
      for (const term of analyze(text, detectLanguage(text))) {
        const h = fnv1a(term);
        const k = h % this.dimensions;
        v[k] = (v[k] ?? 0) + (h & 0x80000000 ? -1 : 1);
      }
      tick(1);
      return normalizeVector(v);
    });
  }
}
