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
  /**
   * UMAP epochs, a multiple of 3 (umap-js' transform hangs otherwise; the map no longer calls it, but the rule
   * stays so that options valid before stay valid and no others become so); default 150.
   */
  readonly nEpochs?: number;
  /** At most this many chunks are fitted (an even sample); others that must be shown are projected. Default 2000. */
  readonly maxPoints?: number;
  /** How many nearest non-retrieved chunks to mark; default 5. */
  readonly neighbors?: number;
  /**
   * The query's star sits at the weighted medoid of this many most similar chunks; default 1: on the chunk most
   * like the question. The map is centred by document, so a question's 5 most similar chunks lie apart and their
   * medoid often among other documents' points (measured with `scripts/map-eval.ts` on all 246 questions with a
   * supporting passage: the supporting document was the star's nearest for 0.58 of same-language questions with
   * 5, 0.79 with 1).
   */
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
  /**
   * Cross-lingual neighbours in UMAP's neighbour graph: a chunk and a chunk of another language that are each
   * among the other's `crossLingualNeighbors` nearest of that language (mutual nearest neighbours, as single-cell
   * analyses merge batches) become neighbours in the graph, at the distance of the chunk's nearest neighbour,
   * when their documents pass {@link EmbeddingMapOptions.crossLingualDocumentRatio}; default 5 (0: none). Needs
   * the chunks' languages ({@link FittedMap.fit}). A German chunk of the RAG text had an English RAG chunk among
   * its nearest in the meaning space, but its 15 nearest were mostly German, so UMAP laid it out as an island
   * (`scripts/map-eval.ts`: its nearest English RAG chunk median 21st nearest on the map; with the pairs 4).
   */
  readonly crossLingualNeighbors?: number;
  /** The least dot product (cosine for unit vectors) of a cross-lingual pair; default 0. */
  readonly crossLingualFloor?: number;
  /**
   * A relative floor for cross-lingual pairs: `i` and `j` are kept only when their cosine is at least this share
   * of each one's cosine with its own language's `nNeighbors - 1`-th nearest (as near as the chunks UMAP would
   * join it to anyway); default 0, none. Unlike {@link EmbeddingMapOptions.crossLingualFloor} it adapts to how tight a chunk's own
   * neighbourhood is.
   */
  readonly crossLingualRatio?: number;
  /**
   * A rank bound for cross-lingual pairs: `i` and `j` are kept only when each is among the other's
   * `crossLingualRank` nearest of all languages (ties counted in its favour); default 0, none.
   */
  readonly crossLingualRank?: number;
  /**
   * A document gate for cross-lingual pairs: `i` and `j` are kept only when their documents are alike, the
   * cosine of the documents' mean vectors at least this share of the reference, the median over documents of
   * the cosine with their most alike document of the same language; default 0.6 (0: no gate). Without it a
   * document no English one is about (the corpus's Debian guide) was pulled among unrelated English chunks by
   * chunks that are only weakly alike (cosine 0.13-0.26). The margin on both sides (`scripts/map-eval.ts`): the
   * German RAG text's mean is at 0.92 of the reference from the LlamaIndex RAG text's, while no German and
   * English documents of different topics come nearer than 0.45 (the model-debugging text and xplique's
   * example-based methods; Debian 0.43), so 0.6 keeps 1.5 times the ratio below the right pair and 1.3 times
   * above the nearest wrong one. Needs the chunks' documents ({@link FittedMap.fit}); without them no pair is
   * kept.
   */
  readonly crossLingualDocumentRatio?: number;
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
  readonly #coords: number[][];
  readonly #fitted: number[];
  readonly #position = new Map<number, number>();
  readonly seed: number;
  readonly #options: EmbeddingMapOptions;

  private constructor(coords: number[][], fitted: number[], seed: number, options: EmbeddingMapOptions) {
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
   * @param similarities the vectors' dot products for the given indices, when a space computes them faster
   * @param documents each vector's document, for {@link EmbeddingMapOptions.crossLingualDocumentRatio}
   */
  static fit(
    vectors: readonly Float32Array[],
    options: EmbeddingMapOptions = {},
    languages?: readonly string[],
    similarities?: (indices: readonly number[]) => Float32Array,
    documents?: readonly string[],
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
    const rows = fitted.map((i) => vectors[i]!);
    // exact neighbours from the dot products (umap-js' NN-descent on 1,024 dense dimensions took most of the
    // time), which a space may compute from its sparse form
    const gram = similarities ? similarities(fitted) : gramOf(rows);
    const knn = nearestByGram(gram, fitted.length, nNeighbors);
    const documentRatio = options.crossLingualDocumentRatio ?? 0.6;
    if (!Number.isFinite(documentRatio) || documentRatio < 0) {
      throw new CrpError(
        'invalid-argument',
        `crossLingualDocumentRatio must be a number >= 0 (0: no document gate); got ${documentRatio}.`,
      );
    }
    const mutual = options.crossLingualNeighbors ?? 5;
    if (mutual > 0 && languages)
      withCrossLingualNeighbors(
        knn,
        gram,
        fitted.map((i) => languages[i]!),
        mutual,
        {
          floor: options.crossLingualFloor ?? 0,
          ratio: options.crossLingualRatio ?? 0,
          rank: options.crossLingualRank ?? 0,
          documentRatio,
          ...(documents ? { documents: fitted.map((i) => documents[i]!) } : {}),
        },
      );
    umap.setPrecomputedKNN(knn.indices, knn.distances);
    const epochs = umap.initializeFit(rows.map((r) => Array.from(r)));
    if ((options.init ?? 'pca') === 'pca') {
      // umap-js starts from random positions, which keeps each group's neighbourhood but places the groups
      // anywhere: start from the first two principal components instead (umap-learn's `init="pca"`)
      const start = umap.getEmbedding();
      const groups = languages ? fitted.map((i) => languages[i]!) : undefined;
      principalCoordinatesOfGram(gram, fitted.length, random, groups).forEach((xy, i) => {
        start[i]![0] = xy[0]!;
        start[i]![1] = xy[1]!;
      });
    }
    for (let e = 0; e < epochs; e++) umap.step();
    return new FittedMap(umap.getEmbedding(), fitted, seed, options);
  }

  /**
   * The star (and a chunk outside the fitted sample): the similarity-weighted mean position of the most similar
   * fitted chunks (by exact cosine). umap-js' `transform` searches its approximate neighbour graph, which for a
   * short question's sparse vector often lands far from the chunks the question is nearest to.
   */
  #place(sims: readonly number[]): [number, number] {
    const k = Math.min(this.#options.starNeighbors ?? 1, this.#fitted.length);
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
    // a chunk outside the fitted sample is placed as the star is, among its most similar fitted chunks
    const extraPos = new Map(
      extra.map((d) => [d, this.#place(vectors.map((v) => dot(v, vectors[d]!)))] as const),
    );
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

/** The dot products of the rows, an n x n matrix (row-major). */
export function gramOf(rows: readonly ArrayLike<number>[]): Float32Array {
  const n = rows.length;
  const d = rows[0]?.length ?? 0;
  const gram = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = rows[i]!;
    for (let j = i; j < n; j++) {
      const b = rows[j]!;
      let sum = 0;
      for (let k = 0; k < d; k++) sum += a[k]! * b[k]!;
      gram[i * n + j] = sum;
      gram[j * n + i] = sum;
    }
  }
  return gram;
}

/**
 * Each row's `k` nearest rows by Euclidean distance, itself first (as umap-learn's neighbour lists), from the
 * dot products: |a - b|^2 = a.a + b.b - 2 a.b.
 */
function nearestByGram(
  gram: Float32Array,
  n: number,
  k: number,
): { indices: number[][]; distances: number[][] } {
  const indices: number[][] = [];
  const distances: number[][] = [];
  for (let i = 0; i < n; i++) {
    // the k - 1 nearest others, kept sorted by distance (ties by index: deterministic)
    const best: number[] = [];
    const dist: number[] = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = Math.sqrt(Math.max(0, gram[i * n + i]! + gram[j * n + j]! - 2 * gram[i * n + j]!));
      if (best.length === k - 1 && d >= dist[k - 2]!) continue;
      let at = best.length;
      while (at > 0 && dist[at - 1]! > d) at--;
      best.splice(at, 0, j);
      dist.splice(at, 0, d);
      if (best.length > k - 1) {
        best.pop();
        dist.pop();
      }
    }
    indices.push([i, ...best]);
    distances.push([0, ...dist]);
  }
  return { indices, distances };
}

/** What a cross-lingual pair must pass besides being mutual (see {@link withCrossLingualNeighbors}). */
export interface CrossLingualCriteria {
  /** {@link EmbeddingMapOptions.crossLingualFloor}. */
  readonly floor?: number;
  /** {@link EmbeddingMapOptions.crossLingualRatio}. */
  readonly ratio?: number;
  /** {@link EmbeddingMapOptions.crossLingualRank}. */
  readonly rank?: number;
  /** {@link EmbeddingMapOptions.crossLingualDocumentRatio}, with each row's document in `documents`. */
  readonly documentRatio?: number;
  readonly documents?: readonly string[];
}

/**
 * Which documents are alike enough for cross-lingual pairs between their chunks
 * ({@link EmbeddingMapOptions.crossLingualDocumentRatio}), from the rows' dot products: the documents' mean
 * vectors' cosine is sum(G[D, E]) / sqrt(sum(G[D, D]) sum(G[E, E])). The reference is the median over documents
 * of the cosine with their most alike document of the same language (a document's language: most of its
 * rows'; any language when no document shares one): how alike two documents on one subject are where language
 * is not in the way. A chunk's document pairs with itself.
 */
function alikeDocuments(
  gram: Float32Array,
  languages: readonly string[],
  documents: readonly string[],
  ratio: number,
): (i: number, j: number) => boolean {
  const n = languages.length;
  const names = [...new Set(documents)];
  const d = names.length;
  const of = documents.map((f) => names.indexOf(f));
  const sums = new Float64Array(d * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sums[of[i]! * d + of[j]!]! += gram[i * n + j]!;
  const cosine = (a: number, b: number) =>
    sums[a * d + b]! / Math.sqrt(Math.max(1e-30, sums[a * d + a]! * sums[b * d + b]!));
  const languageOf = names.map((_, a) => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++)
      if (of[i] === a) counts.set(languages[i]!, (counts.get(languages[i]!) ?? 0) + 1);
    return [...counts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))[0]![0];
  });
  const nearest = (same: boolean) =>
    names.flatMap((_, a) => {
      const peers = names
        .map((__, b) => b)
        .filter((b) => b !== a && (!same || languageOf[b] === languageOf[a]));
      return peers.length > 0 ? [Math.max(...peers.map((b) => cosine(a, b)))] : [];
    });
  const own = nearest(true);
  const reference = median(own.length > 0 ? own : nearest(false));
  // a single document: nothing to compare with, every pair is within it
  if (reference === undefined) return () => true;
  const threshold = ratio * reference;
  return (i, j) => of[i] === of[j] || cosine(of[i]!, of[j]!) >= threshold;
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * Adds the mutual nearest neighbours across languages to the neighbour lists (in place; see
 * {@link EmbeddingMapOptions.crossLingualNeighbors}): `i` and `j` of different languages are a pair when each is
 * among the other's `m` nearest of that language. `j` then takes the place of `i`'s farthest neighbours, one per
 * pair, at most half of them, at the distance of `i`'s neighbour of `j`'s rank among `i`'s pairs (nearer
 * first): UMAP weighs an edge by how much farther it is than the chunk's nearest, and the raw cross-lingual
 * distance, a step larger than the own-language ones, gave it almost no weight. (Distances scaled by how far
 * each language lies from the chunk, as CSLS does for word translation, were measured too: the German RAG
 * chunks' rank of their nearest English RAG chunk on the map 17 with 3 pairs, 6 with 5.) A pair must pass each
 * of the `criteria` that is set.
 */
export function withCrossLingualNeighbors(
  knn: { indices: number[][]; distances: number[][] },
  gram: Float32Array,
  languages: readonly string[],
  m: number,
  criteria: CrossLingualCriteria = {},
): void {
  const { floor = 0, ratio = 0, rank = 0, documentRatio = 0, documents } = criteria;
  const n = languages.length;
  // without the documents the gate cannot vouch for any pair
  if (documentRatio > 0 && !documents) return;
  const alike = documentRatio > 0 ? alikeDocuments(gram, languages, documents!, documentRatio) : undefined;
  const distance = (i: number, j: number) =>
    Math.sqrt(Math.max(0, gram[i * n + i]! + gram[j * n + j]! - 2 * gram[i * n + j]!));
  const cosine = (i: number, j: number) =>
    gram[i * n + j]! / Math.sqrt(Math.max(1e-30, gram[i * n + i]! * gram[j * n + j]!));
  const names = [...new Set(languages)];
  // with a ratio, the own language's (k-1)-th nearest too (the list holds the chunk itself first)
  const own = ratio > 0 ? (knn.indices[0]?.length ?? 1) - 1 : 0;
  // nearestOf[i][l]: i's m nearest of language l (of its own: its `own` nearest, itself left out), nearest first
  const nearestOf = Array.from({ length: n }, (_, i) =>
    names.map((l) => {
      const size = l === languages[i] ? own : m;
      if (size === 0) return [] as number[];
      // the nearest kept sorted (ties by index), as nearestByGram
      const best: number[] = [];
      const dist: number[] = [];
      for (let j = 0; j < n; j++) {
        if (languages[j] !== l || j === i) continue;
        const d = distance(i, j);
        if (best.length === size && d >= dist[size - 1]!) continue;
        let at = best.length;
        while (at > 0 && dist[at - 1]! > d) at--;
        best.splice(at, 0, j);
        dist.splice(at, 0, d);
        if (best.length > size) {
          best.pop();
          dist.pop();
        }
      }
      return best;
    }),
  );
  // how near a chunk's own language comes: the cosine of its farthest own-language neighbour kept above
  const ownCosine = nearestOf.map((lists, i) => {
    const mine = lists[names.indexOf(languages[i]!)]!;
    return mine.length > 0 ? cosine(i, mine[mine.length - 1]!) : Number.NEGATIVE_INFINITY;
  });
  // j's rank among i's neighbours of every language: 1 + how many lie strictly nearer
  const rankOf = (i: number, j: number) => {
    const d = distance(i, j);
    let r = 1;
    for (let o = 0; o < n; o++) if (o !== i && o !== j && distance(i, o) < d) r++;
    return r;
  };
  const pairs = Array.from({ length: n }, (_, i) =>
    names.flatMap((l, li) =>
      l === languages[i]
        ? []
        : nearestOf[i]![li]!.filter(
            (j) =>
              gram[i * n + j]! >= floor &&
              (ratio <= 0 ||
                (cosine(i, j) >= ratio * ownCosine[i]! && cosine(i, j) >= ratio * ownCosine[j]!)) &&
              nearestOf[j]![names.indexOf(languages[i]!)]!.includes(i) &&
              (!alike || alike(i, j)) &&
              (rank <= 0 || (rankOf(i, j) <= rank && rankOf(j, i) <= rank)),
          ),
    ),
  );
  for (let i = 0; i < n; i++) {
    const mine = pairs[i]!.sort((a, b) => distance(i, a) - distance(i, b) || a - b);
    const k = knn.indices[i]!.length;
    const take = mine.filter((j) => !knn.indices[i]!.includes(j)).slice(0, Math.floor((k - 1) / 2));
    if (take.length === 0) continue;
    // the nearest neighbours kept (the list starts with the chunk itself at 0)
    const keep = k - take.length;
    const indices = knn.indices[i]!.slice(0, keep);
    const distances = knn.distances[i]!.slice(0, keep);
    take.forEach((j, r) => {
      indices.push(j);
      distances.push(knn.distances[i]![Math.min(r + 1, k - 1)]!);
    });
    // umap-js expects each list sorted by distance
    const order = indices.map((_, e) => e).sort((a, b) => distances[a]! - distances[b]! || a - b);
    knn.indices[i] = order.map((e) => indices[e]!);
    knn.distances[i] = order.map((e) => distances[e]!);
  }
}

/**
 * The rows' first two principal components, scaled so the largest coordinate is 10 and with noise of 1e-4, as
 * umap-learn's `noisy_scale_coords` starts a PCA-initialised layout. With `groups`, each group's own mean is
 * removed instead of the overall one (per-language centring, as cross-lingual embeddings are aligned): an offset
 * between the groups is then no component.
 */
export function principalCoordinates(
  rows: readonly number[][],
  random: () => number,
  groups?: readonly string[],
): number[][] {
  return principalCoordinatesOfGram(gramOf(rows), rows.length, random, groups);
}

/**
 * {@link principalCoordinates} from the rows' dot products (kernel PCA with a linear kernel): the centred rows'
 * dot products K = G - A - A^T + B (A: each row's mean dot product with a group, B: the groups' means'), whose
 * first two eigenvectors (power iteration, deflated; seeded start) u, times the square root of their
 * eigenvalues, are the coordinates. n x n instead of n x dimensions: the meaning space has 1,024.
 */
export function principalCoordinatesOfGram(
  gram: Float32Array,
  n: number,
  random: () => number,
  groups?: readonly string[],
): number[][] {
  const names = [...new Set(Array.from({ length: n }, (_, i) => groups?.[i] ?? ''))];
  const group = Array.from({ length: n }, (_, i) => names.indexOf(groups?.[i] ?? ''));
  const counts = names.map((_, g) => group.filter((x) => x === g).length);
  // a[i][g]: row i's mean dot product with the rows of group g; b[g][h]: the mean of a over the rows of g
  const a = new Float64Array(n * names.length);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) a[i * names.length + group[j]!]! += gram[i * n + j]! / counts[group[j]!]!;
  const b = new Float64Array(names.length * names.length);
  for (let i = 0; i < n; i++)
    for (let h = 0; h < names.length; h++)
      b[group[i]! * names.length + h]! += a[i * names.length + h]! / counts[group[i]!]!;
  const centred = new Float64Array(n * n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      centred[i * n + j] =
        gram[i * n + j]! -
        a[i * names.length + group[j]!]! -
        a[j * names.length + group[i]!]! +
        b[group[i]! * names.length + group[j]!]!;
    }
    total += centred[i * n + i]!;
  }
  const times = (v: Float64Array) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += centred[i * n + j]! * v[j]!;
      out[i] = sum;
    }
    return out;
  };
  const dotN = (x: Float64Array, y: Float64Array) => x.reduce((sum, xi, i) => sum + xi * y[i]!, 0);
  const coordinates: Float64Array[] = [];
  const components: Float64Array[] = [];
  for (let c = 0; c < 2; c++) {
    let v = Float64Array.from({ length: n }, () => random() - 0.5);
    let zero = false;
    // a start needs no exact component: 60 steps (on the meaning space the first two eigenvalues are close, and
    // 200 steps did not reach 1e-6 either)
    for (let it = 0; it < 60; it++) {
      const next = times(v);
      for (const u of components) {
        const along = dotN(next, u);
        for (let i = 0; i < n; i++) next[i]! -= along * u[i]!;
      }
      const norm = Math.sqrt(dotN(next, next));
      // the total variance is K's trace: an eigenvalue far below it is rounding, no variance left
      if (norm <= 1e-9 * total) {
        zero = true;
        break;
      }
      let change = 0;
      for (let i = 0; i < n; i++) {
        next[i] = next[i]! / norm;
        change += Math.abs(next[i]! - v[i]!);
      }
      v = next;
      if (change < 1e-6) break;
    }
    components.push(zero ? new Float64Array(n) : v);
    const eigenvalue = zero ? 0 : dotN(v, times(v));
    coordinates.push(zero ? new Float64Array(n) : v.map((x) => x * Math.sqrt(Math.max(eigenvalue, 0))));
  }
  const [first, second] = coordinates as [Float64Array, Float64Array];
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(first[i]!), Math.abs(second[i]!));
  max ||= 1;
  return Array.from(first, (x, i) => [x, second[i]!].map((c) => (10 * c) / max + 1e-4 * gaussian(random)));
}

/** A standard normal number (Box-Muller). */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
