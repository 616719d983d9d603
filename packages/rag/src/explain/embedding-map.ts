import { CrpError, mulberry32 } from '@crp/common';
import { UMAP } from 'umap-js';
import { dot } from '../embeddings/embedding-provider.js';
import type { Chunk } from '../types.js';

/** Options of the 2-D embedding map. */
export interface EmbeddingMapOptions {
  /** Seed of UMAP's random numbers; default 42. Same seed and data give the same map. */
  readonly seed?: number;
  /** UMAP neighbours; default 15. */
  readonly nNeighbors?: number;
  /** UMAP epochs, a multiple of 3 (umap-js' transform hangs otherwise); default 150. */
  readonly nEpochs?: number;
  /** At most this many chunks are fitted (an even sample); others that must be shown are projected. Default 2000. */
  readonly maxPoints?: number;
  /** How many nearest non-retrieved chunks to mark; default 5. */
  readonly neighbors?: number;
  /** The query's star sits at the weighted mean of this many most similar chunks; default 5. */
  readonly starNeighbors?: number;
  /**
   * What the map is fitted on: `meaning` (default), each chunk's concepts in one language-neutral space
   * ({@link MeaningSpace}: German terms through the dictionary), so chunks group by topic across languages;
   * `embedding`, the index's embedding vectors (with an English embedding model these group by language).
   */
  readonly space?: 'meaning' | 'embedding';
  /**
   * Where UMAP starts: `pca` (default), the first two principal components, scaled as umap-learn's
   * `init="pca"` does, of the vectors with each language's mean removed when {@link FittedMap.fit} is given
   * the chunks' languages (else the first component was the language); `random`, umap-js' own random
   * positions (the map before: where each group landed relative to the others was left to chance).
   */
  readonly init?: 'pca' | 'random';
}

/** A point of the map. */
export interface MapPoint {
  readonly chunkId: string;
  readonly file: string;
  readonly page?: number;
  readonly x: number;
  readonly y: number;
  /** `retrieved`: among the sources; `neighbor`: close to the query but not retrieved; `other`. */
  readonly kind: 'retrieved' | 'neighbor' | 'other';
  /** Source number for retrieved chunks. */
  readonly source?: number;
  /** Cosine similarity to the query (in the map's space). */
  readonly similarity: number;
}

/** All (or a sample of) chunks in 2-D with the query projected into the same plane. */
export interface EmbeddingMap {
  readonly points: readonly MapPoint[];
  readonly query: { readonly x: number; readonly y: number };
  readonly seed: number;
  readonly method: 'umap';
  /** The vectors the map was fitted on (see {@link EmbeddingMapOptions.space}). */
  readonly space: 'meaning' | 'embedding';
}

/** A fitted UMAP model of an index's vectors, reusable for many queries. */
export class FittedMap {
  readonly #umap: UMAP;
  readonly #coords: number[][];
  readonly #fitted: number[];
  readonly #position = new Map<number, number>();
  readonly seed: number;
  readonly #options: EmbeddingMapOptions;

  private constructor(
    umap: UMAP,
    coords: number[][],
    fitted: number[],
    seed: number,
    options: EmbeddingMapOptions,
  ) {
    this.#umap = umap;
    this.#coords = coords;
    this.#fitted = fitted;
    fitted.forEach((doc, i) => {
      this.#position.set(doc, i);
    });
    this.seed = seed;
    this.#options = options;
  }

  /**
   * Fits UMAP (seeded) to the vectors, or to an even sample of at most `maxPoints` of them.
   * @param languages each vector's language (or any group): the start positions are centred per language
   */
  static fit(
    vectors: readonly Float32Array[],
    options: EmbeddingMapOptions = {},
    languages?: readonly string[],
  ): FittedMap {
    const nEpochs = options.nEpochs ?? 150;
    if (!Number.isInteger(nEpochs) || nEpochs < 3 || nEpochs % 3 !== 0) {
      throw new CrpError(
        'invalid-argument',
        `nEpochs must be a positive multiple of 3 (umap-js transform needs it); got ${nEpochs}.`,
      );
    }
    if (vectors.length < 3) {
      throw new CrpError(
        'invalid-argument',
        `An embedding map needs at least 3 chunks; the index has ${vectors.length}.`,
      );
    }
    const seed = options.seed ?? 42;
    const max = options.maxPoints ?? 2000;
    const count = Math.min(vectors.length, Math.max(3, max));
    const fitted = Array.from({ length: count }, (_, k) => Math.floor((k * vectors.length) / count));
    const nNeighbors = Math.max(2, Math.min(options.nNeighbors ?? 15, fitted.length - 1));
    const random = mulberry32(seed);
    const umap = new UMAP({ nComponents: 2, nNeighbors, nEpochs, minDist: 0.1, random });
    const rows = fitted.map((i) => Array.from(vectors[i]!));
    const epochs = umap.initializeFit(rows);
    if ((options.init ?? 'pca') === 'pca') {
      // umap-js starts from random positions, which keeps each group's neighbourhood but places the groups
      // anywhere: start from the first two principal components instead (umap-learn's `init="pca"`)
      const start = umap.getEmbedding();
      const groups = languages ? fitted.map((i) => languages[i]!) : undefined;
      principalCoordinates(rows, random, groups).forEach((xy, i) => {
        start[i]![0] = xy[0]!;
        start[i]![1] = xy[1]!;
      });
    }
    for (let e = 0; e < epochs; e++) umap.step();
    return new FittedMap(umap, umap.getEmbedding(), fitted, seed, options);
  }

  /**
   * The star: the similarity-weighted mean position of the query's most similar fitted chunks (by exact
   * cosine). umap-js' `transform` searches its approximate neighbour graph, which for a short question's
   * sparse vector often lands far from the chunks the question is nearest to.
   */
  #place(sims: readonly number[]): [number, number] {
    const k = Math.min(this.#options.starNeighbors ?? 5, this.#fitted.length);
    const best = this.#fitted
      .map((doc, i) => ({ s: sims[doc]!, i }))
      .sort((a, b) => b.s - a.s)
      .slice(0, k);
    const w = best.map((b) => Math.max(b.s, 0) + 1e-6);
    const at = best.map((b) => this.#coords[b.i]!);
    // the medoid of the most similar chunks (weighted), then the weighted mean of those near it: the
    // star stays in the group the question is nearest to instead of between two groups
    const cost = at.map((p) =>
      at.reduce((sum, o, j) => sum + w[j]! * Math.hypot(p[0]! - o[0]!, p[1]! - o[1]!), 0),
    );
    const medoid = at[cost.indexOf(Math.min(...cost))]!;
    const dist = at.map((o) => Math.hypot(medoid[0]! - o[0]!, medoid[1]! - o[1]!));
    const radius = [...dist].sort((a, b) => a - b)[Math.floor(dist.length / 2)]!;
    let x = 0;
    let y = 0;
    let total = 0;
    at.forEach((o, j) => {
      if (dist[j]! > radius) return;
      x += w[j]! * o[0]!;
      y += w[j]! * o[1]!;
      total += w[j]!;
    });
    x /= total;
    y /= total;
    return [x, y];
  }

  /**
   * Places the query and marks retrieved chunks and the nearest non-retrieved ones.
   * @param vectors the vectors the map was fitted on
   * @param compareWith the chunk vectors the query is compared with, when not `vectors` (a
   *   {@link MeaningSpace}'s `questionVectors`: a question has no document to be centred by)
   */
  project(
    chunks: readonly Chunk[],
    vectors: readonly Float32Array[],
    query: Float32Array,
    retrieved: readonly string[],
    compareWith: readonly Float32Array[] = vectors,
  ): EmbeddingMap {
    const sims = compareWith.map((v) => dot(v, query));
    const retrievedIdx = new Map<number, number>();
    retrieved.forEach((id, i) => {
      const doc = chunks.findIndex((c) => c.id === id);
      if (doc >= 0) retrievedIdx.set(doc, i + 1);
    });
    const neighbors = sims
      .map((s, i) => ({ s, i }))
      .filter((e) => !retrievedIdx.has(e.i))
      .sort((a, b) => b.s - a.s)
      .slice(0, this.#options.neighbors ?? 5)
      .map((e) => e.i);
    const neighborSet = new Set(neighbors);
    const extra = [...retrievedIdx.keys(), ...neighbors].filter((d) => !this.#position.has(d));
    const projected = extra.length
      ? (this.#umap.transform(extra.map((d) => Array.from(vectors[d]!))) as number[][])
      : [];
    const extraPos = new Map(extra.map((d, i) => [d, projected[i]!]));
    const docs = [...this.#fitted, ...extra];
    const points: MapPoint[] = docs.map((doc) => {
      const xy = this.#position.has(doc) ? this.#coords[this.#position.get(doc)!]! : extraPos.get(doc)!;
      const c = chunks[doc]!;
      const source = retrievedIdx.get(doc);
      return {
        chunkId: c.id,
        file: c.metadata.file,
        ...(c.metadata.page !== undefined ? { page: c.metadata.page } : {}),
        x: xy[0]!,
        y: xy[1]!,
        kind: source !== undefined ? 'retrieved' : neighborSet.has(doc) ? 'neighbor' : 'other',
        ...(source !== undefined ? { source } : {}),
        similarity: sims[doc]!,
      };
    });
    const q = this.#place(sims);
    return {
      points,
      query: { x: q[0]!, y: q[1]! },
      seed: this.seed,
      method: 'umap',
      space: this.#options.space ?? 'meaning',
    };
  }
}

/**
 * The rows' first two principal components (power iteration, deflated; seeded start), scaled so the largest
 * coordinate is 10 and with noise of 1e-4, as umap-learn's `noisy_scale_coords` starts a PCA-initialised layout.
 * With `groups`, each group's own mean is removed instead of the overall one (per-language centring, as
 * cross-lingual embeddings are aligned): an offset between the groups is then no component.
 */
export function principalCoordinates(
  rows: readonly number[][],
  random: () => number,
  groups?: readonly string[],
): number[][] {
  const d = rows[0]?.length ?? 0;
  // rows kept sparse (the meaning space's are mostly zeros) and centred implicitly: (x - m) . v = x . v - m . v
  const sparse = rows.map((r) => {
    const at = r.flatMap((x, j) => (x !== 0 ? [j] : []));
    return { at, values: at.map((j) => r[j]!) };
  });
  const names = [...new Set(rows.map((_, i) => groups?.[i] ?? ''))];
  const group = rows.map((_, i) => names.indexOf(groups?.[i] ?? ''));
  const counts = names.map((_, g) => group.filter((x) => x === g).length);
  const means = names.map(() => new Float64Array(d));
  sparse.forEach((r, i) => {
    const m = means[group[i]!]!;
    r.at.forEach((j, k) => {
      m[j]! += r.values[k]! / counts[group[i]!]!;
    });
  });
  const dotMean = (m: Float64Array, v: Float64Array) => m.reduce((sum, x, j) => sum + x * v[j]!, 0);
  const project = (v: Float64Array) => {
    const mv = means.map((m) => dotMean(m, v));
    return sparse.map((r, i) => r.at.reduce((sum, j, k) => sum + r.values[k]! * v[j]!, 0) - mv[group[i]!]!);
  };
  // the total variance, sum of |x - m|^2 = sum of |x|^2 - sum of n_g |m_g|^2: an eigenvalue far below it is rounding
  let total = 0;
  for (const r of sparse) for (const x of r.values) total += x * x;
  means.forEach((m, g) => {
    total -= counts[g]! * dotMean(m, m);
  });
  const components: Float64Array[] = [];
  for (let c = 0; c < 2; c++) {
    let v = Float64Array.from({ length: d }, () => random() - 0.5);
    for (let it = 0; it < 200; it++) {
      // v <- X^T X v (X centred), without the components found before
      const s = project(v);
      const next = new Float64Array(d);
      const perGroup = names.map(() => 0);
      sparse.forEach((r, i) => {
        r.at.forEach((j, k) => {
          next[j]! += s[i]! * r.values[k]!;
        });
        perGroup[group[i]!]! += s[i]!;
      });
      means.forEach((m, g) => {
        for (let j = 0; j < d; j++) next[j]! -= perGroup[g]! * m[j]!;
      });
      for (const u of components) {
        const along = dotMean(next, u);
        for (let j = 0; j < d; j++) next[j]! -= along * u[j]!;
      }
      const norm = Math.sqrt(dotMean(next, next));
      if (norm <= 1e-9 * total) {
        // no variance left (rounding only): the component is zero
        v = new Float64Array(d);
        break;
      }
      let change = 0;
      for (let j = 0; j < d; j++) {
        next[j] = next[j]! / norm;
        change += Math.abs(next[j]! - v[j]!);
      }
      v = next;
      if (change < 1e-7) break;
    }
    components.push(v);
  }
  const [first, second] = components.map(project) as [number[], number[]];
  const max = Math.max(...first.map(Math.abs), ...second.map(Math.abs)) || 1;
  return first.map((x, i) => [x, second[i]!].map((c) => (10 * c) / max + 1e-4 * gaussian(random)));
}

/** A standard normal number (Box-Muller). */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
