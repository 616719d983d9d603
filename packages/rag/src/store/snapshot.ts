import { CrpError, describeError } from '@crp/common';
import type { DocumentFormat } from '../ingest/document.js';
import { type TermPostings, termPostings } from '../retrieval/bm25.js';
import type { Chunk, Language } from '../types.js';

/** Where a downloaded file came from (`crp-rag add`): recorded in the index with its checksum. */
export interface FileOrigin {
  readonly url: string;
  /** SHA-256 (hex) of the downloaded bytes. */
  readonly sha256: string;
  readonly bytes: number;
  /** ISO time of the download. */
  readonly downloadedAt: string;
}

/** What the index remembers of one source file. */
export interface FileRecord {
  /** SHA-256 (hex) of the file bytes. */
  readonly hash: string;
  readonly title: string;
  readonly format: DocumentFormat;
  readonly language: Language;
  readonly pages: number;
  readonly bytes: number;
  readonly chunkIds: readonly string[];
  /** Set for files downloaded with `crp-rag add` / `addPaper`. */
  readonly origin?: FileOrigin;
  /** Pages without a text layer and similar notes from loading. */
  readonly warnings?: readonly string[];
  /**
   * What the loaded text depended on besides the bytes and the pipeline (`UpdateOptions.loadKey`: a PDF's hyphen
   * lexicon); absent when nothing did.
   */
  readonly loadKey?: string;
}

/**
 * The analysed chunks (index terms), saved so that opening an index does not analyse every chunk again:
 * `chunks[i]` lists the term ids of chunk i in order (`vocabulary[id]` is the term), `lengths[i]` its length
 * for BM25 (compound parts not counted). Valid only for the analysis `key` it was made with. An opened index
 * holds each chunk's ids as a view into the file's bytes (`Int32Array`).
 */
export interface ChunkTerms {
  readonly key: string;
  readonly vocabulary: readonly string[];
  readonly chunks: readonly (readonly number[] | Int32Array)[];
  readonly lengths: readonly number[];
  /**
   * The inverted lists of `chunks` (for BM25), as read from an index file; always those of `chunks` (a file is
   * written with them counted afresh).
   */
  readonly postings?: TermPostings;
}

/** Everything an index holds; `vectors[i]` belongs to `chunks[i]`. */
export interface IndexSnapshot {
  readonly embeddingId: string;
  readonly dimensions: number;
  readonly chunking: { readonly chunkSize: number; readonly chunkOverlap: number };
  /** Version of ingestion and analysis that made the chunks; a different one re-indexes every file. */
  readonly pipeline?: number;
  readonly sourceDir?: string;
  readonly files: Readonly<Record<string, FileRecord>>;
  readonly chunks: readonly Chunk[];
  readonly vectors: readonly Float32Array[];
  /** Keys of external vector stores that hold all of these vectors. */
  readonly syncedStores: readonly string[];
  /** The chunks' index terms (absent in older indexes: then they are analysed on opening). */
  readonly terms?: ChunkTerms;
  readonly updatedAt: string;
}

/**
 * Version of the ingestion pipeline (loaders, chunker) whose chunks an index holds. 2: clean text from
 * Markdown/HTML, section-aware chunks with block spans; 3: PDF blocks from the page layout (headings, code,
 * running headers and footers dropped); 4: index terms carry their language (`en:rule`); 5: MkDocs admonitions;
 * 7: a PDF compound split at a line end keeps its hyphen when the dictionary knows both parts, not the joined
 * word ("rule-based", was "rulebased"); 8: Markdown badges, image links, label-only images and bare address lines
 * dropped (an image keeps its alt text when that is a caption of three words or more; an address line that a
 * sentence runs through stays); 9: a PDF line that ends with room for the next line's first word ends its block
 * (list items whose bullets the PDF draws as graphics were glued into one sentence); 10: PDF footnote markers
 * left out of the text ("et al6", "wurden.11 Sie") and a footnote's own number taken off its text; 11: footnotes a
 * block kind of their own (`note`: a PDF page's notes, HTML footnote lists; Markdown `[^1]:` definitions stay
 * dropped), left out of a chunk's language.
 */
export const PIPELINE_VERSION = 11;

// 02 keeps the chunks' term ids as int32 after the vectors (as JSON they were most of the parse when opening);
// 03 keeps the chunks' texts as UTF-8 after them, decoded when a chunk's text is first read (a search reads
// few: parsing 10,000 texts was most of opening an index, and their strings most of its garbage collection);
// 04 adds BM25's inverted lists before the texts (counting them was ~60 ms of opening 10,000 chunks)
const MAGIC = 'CRPRAG04';
const MAGIC_V3 = 'CRPRAG03';
const MAGIC_V2 = 'CRPRAG02';
const MAGIC_V1 = 'CRPRAG01';
const HEADER = 8 + 4 * 3;
// version 2 adds the number of term ids after the three counts, version 3 the length of the texts in bytes,
// version 4 the length of the postings section in int32
const HEADER_V2 = HEADER + 4;
const HEADER_V3 = HEADER_V2 + 4;
const HEADER_V4 = HEADER_V3 + 4;

/** Name of the index file inside an index folder. */
export const INDEX_FILE = 'index.crprag';

/** An empty snapshot for an embedding and chunking. */
export function emptySnapshot(
  embeddingId: string,
  chunking: { chunkSize: number; chunkOverlap: number },
): IndexSnapshot {
  return {
    embeddingId,
    dimensions: 0,
    chunking,
    pipeline: PIPELINE_VERSION,
    files: {},
    chunks: [],
    vectors: [],
    syncedStores: [],
    updatedAt: new Date(0).toISOString(),
  };
}

/**
 * Serialises a snapshot as byte parts: magic `CRPRAG04`; JSON length, dimensions, vector count, the term
 * section's length in int32, the texts' length in bytes and the postings section's length in int32 (uint32 LE); the JSON
 * (files, chunks without their texts, settings, the terms' vocabulary and lengths), padding to 4 bytes; the
 * vectors as float32; the chunks' term ids one after the other, then each chunk's end offset, as int32; each
 * chunk's text's start in the texts and their end (int32); with terms, their inverted lists (int32: the
 * vocabulary's offsets into them, then P documents and P term frequencies, see `TermPostings`); the texts as
 * UTF-8.
 */
export function encodeSnapshot(s: IndexSnapshot): Uint8Array[] {
  const { vectors, terms, chunks: withText, ...rest } = s;
  const ids = terms ? terms.chunks.reduce((n, c) => n + c.length, 0) : 0;
  const encoder = new TextEncoder();
  const texts = withText.map((c) => encoder.encode(c.text));
  const textOffsets = new Int32Array(texts.length + 1);
  texts.forEach((t, i) => {
    textOffsets[i + 1] = textOffsets[i]! + t.byteLength;
  });
  const chunks = withText.map(({ text: _, ...c }) => c);
  const json = encoder.encode(
    JSON.stringify(
      terms
        ? { ...rest, chunks, terms: { key: terms.key, vocabulary: terms.vocabulary, lengths: terms.lengths } }
        : { ...rest, chunks },
    ),
  );
  const pad = (4 - (json.byteLength % 4)) % 4;
  const header = new Uint8Array(HEADER_V4);
  header.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(header.buffer);
  view.setUint32(8, json.byteLength, true);
  view.setUint32(12, s.dimensions, true);
  view.setUint32(16, vectors.length, true);
  const termData = new Int32Array(terms ? ids + terms.chunks.length : 0);
  view.setUint32(20, termData.length, true);
  view.setUint32(24, textOffsets[texts.length]!, true);
  // counted from the ids being written, never taken from the snapshot (they could belong to other ids)
  const postings = terms ? termPostings(terms.vocabulary.length, terms.chunks) : undefined;
  view.setUint32(28, postings ? postings.offsets.length + 2 * postings.docs.length : 0, true);
  const data = new Float32Array(vectors.length * s.dimensions);
  vectors.forEach((v, i) => {
    if (v.length !== s.dimensions) {
      throw new CrpError(
        'store-failed',
        `Vector ${i} has ${v.length} dimensions; the index has ${s.dimensions}.`,
      );
    }
    data.set(v, i * s.dimensions);
  });
  if (terms) {
    let at = 0;
    terms.chunks.forEach((c, i) => {
      termData.set(c, at);
      at += c.length;
      termData[ids + i] = at;
    });
  }
  const postingData = postings ? [postings.offsets, postings.docs, postings.tfs] : [];
  const parts = [data, termData, textOffsets, ...postingData].map(
    (a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
  );
  if (!littleEndian()) {
    for (const bytes of parts) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  }
  return [header, json, new Uint8Array(pad), ...parts, ...texts];
}

const littleEndian = () => new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Little-endian 32-bit values of `bytes` as a typed array: in place when aligned on a little-endian machine. */
function view32<T extends Float32Array | Int32Array>(
  Type: { new (b: ArrayBufferLike, o: number, n: number): T; new (n: number): T },
  bytes: Uint8Array,
): T {
  const n = bytes.byteLength / 4;
  if (littleEndian() && bytes.byteOffset % 4 === 0) return new Type(bytes.buffer, bytes.byteOffset, n);
  const out = new Type(n);
  const raw = new Uint8Array(out.buffer);
  raw.set(bytes);
  if (!littleEndian()) for (let i = 0; i < raw.length; i += 4) raw.subarray(i, i + 4).reverse();
  return out;
}

/**
 * Parses what {@link encodeSnapshot} wrote (and the version-2 files before it, whose texts are in the JSON, and
 * the version-1 files before those, whose term ids are in the
 * JSON); `corrupt-file` if the bytes are not a whole index.
 */
export function decodeSnapshot(buf: Uint8Array, name = 'index'): IndexSnapshot {
  const bad = (why: string): never => {
    throw new CrpError(
      'corrupt-file',
      `${name} is not a readable @crp/rag index (${why}); delete it and index again.`,
      {
        details: { file: name },
      },
    );
  };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = buf.byteLength >= HEADER ? new TextDecoder('latin1').decode(buf.subarray(0, 8)) : '';
  const version = [MAGIC_V1, MAGIC_V2, MAGIC_V3, MAGIC].indexOf(magic) + 1;
  if (version === 0) bad('wrong header');
  const v2 = version >= 2;
  const v3 = version >= 3;
  const head = [HEADER, HEADER_V2, HEADER_V3, HEADER_V4][version - 1]!;
  if (buf.byteLength < head) bad('wrong header');
  const jsonLength = view.getUint32(8, true);
  const dims = view.getUint32(12, true);
  const count = view.getUint32(16, true);
  // the term section: every chunk's ids, then each chunk's end offset
  const termInts = v2 ? view.getUint32(20, true) : 0;
  const ids = termInts - count;
  const jsonEnd = head + jsonLength;
  const dataStart = jsonEnd + ((4 - (jsonLength % 4)) % 4);
  const termStart = dataStart + count * dims * 4;
  const termBytes = termInts * 4;
  // version 3: the texts' offsets (int32) and the texts after the term section; version 4: the postings between
  const textStart = termStart + termBytes;
  const textBytes = v3 ? view.getUint32(24, true) : 0;
  const postingStart = textStart + (v3 ? (count + 1) * 4 : 0);
  const postingInts = version >= 4 ? view.getUint32(28, true) : 0;
  const textsStart = postingStart + postingInts * 4;
  if (buf.byteLength !== textsStart + textBytes)
    bad(`expected ${textsStart + textBytes} bytes, found ${buf.byteLength}`);
  let rest: Omit<IndexSnapshot, 'vectors'>;
  try {
    rest = JSON.parse(new TextDecoder().decode(buf.subarray(head, jsonEnd))) as Omit<
      IndexSnapshot,
      'vectors'
    >;
  } catch (error) {
    return bad(`bad JSON: ${describeError(error)}`);
  }
  if (!Array.isArray(rest.chunks) || rest.chunks.length !== count)
    bad(`${rest.chunks?.length} chunks but ${count} vectors`);
  if (v3)
    rest = {
      ...rest,
      chunks: lazyTexts(rest.chunks, buf, textStart, postingStart, textsStart, textBytes, bad),
    };
  const postings =
    postingInts > 0 || (version >= 4 && rest.terms)
      ? readPostings(buf.subarray(postingStart, textsStart), rest.terms?.vocabulary.length, count, bad)
      : undefined;
  // the vectors stay in the file's buffer (no copy of what is most of the file)
  const all = view32(Float32Array, buf.subarray(dataStart, termStart));
  const vectors = Array.from({ length: count }, (_, i) => all.subarray(i * dims, (i + 1) * dims));
  if (v2 && rest.terms) {
    if (termInts < count) bad('term ids missing');
    const t = view32(Int32Array, buf.subarray(termStart, termStart + termBytes));
    let at = 0;
    const chunks = Array.from({ length: count }, (_, i) => {
      const end = t[ids + i]!;
      if (end < at || end > ids) bad('term ids out of range');
      // a view, not a copy: 10,000 chunks' arrays of ids were a tenth of opening an index
      const c = t.subarray(at, end);
      at = end;
      return c;
    });
    return { ...rest, terms: { ...rest.terms, chunks, ...(postings ? { postings } : {}) }, vectors };
  }
  return { ...rest, vectors };
}

/** Where a lazily read chunk's text is: its position in the file (not enumerable, so never copied or saved). */
const POSITION = Symbol('position');

/**
 * The chunks of a version-3 file with their texts read from the file's bytes when first asked for (an
 * enumerable getter, so spreading or serialising a chunk sees its text as before).
 */
function lazyTexts(
  chunks: readonly Chunk[],
  buf: Uint8Array,
  offsetsStart: number,
  offsetsEnd: number,
  textsStart: number,
  textBytes: number,
  bad: (why: string) => never,
): Chunk[] {
  const offsets = view32(Int32Array, buf.subarray(offsetsStart, offsetsEnd));
  const texts = buf.subarray(textsStart, textsStart + textBytes);
  const decoder = new TextDecoder();
  if (offsets[0] !== 0 || offsets[chunks.length] !== textBytes) bad('text offsets out of range');
  for (let i = 0; i < chunks.length; i++) if (offsets[i + 1]! < offsets[i]!) bad('text offsets out of range');
  const decoded: (string | undefined)[] = new Array(chunks.length);
  // one getter for every chunk, finding its text by the chunk's position: a closure per chunk gave each chunk a
  // hidden class of its own (10,000 of them), which made the loop twice as slow and every later read of a
  // chunk's metadata (the search reads each chunk's language per question) twenty times slower
  function text(this: { [POSITION]: number }): string {
    const i = this[POSITION];
    const known = decoded[i];
    if (known !== undefined) return known;
    const t = decoder.decode(texts.subarray(offsets[i]!, offsets[i + 1]!));
    decoded[i] = t;
    return t;
  }
  const out = new Array<Chunk>(chunks.length);
  for (let i = 0; i < chunks.length; i++) {
    const parsed = chunks[i]!;
    // `id` first and `text` second, as a chunk is written
    const chunk = { id: parsed.id } as Chunk & Record<string, unknown>;
    Object.defineProperty(chunk, 'text', { enumerable: true, get: text });
    Object.defineProperty(chunk, POSITION, { value: i });
    for (const key in parsed)
      if (key !== 'id') chunk[key] = (parsed as unknown as Record<string, unknown>)[key];
    out[i] = chunk;
  }
  return out;
}

/**
 * The inverted lists of a version-4 file (see {@link encodeSnapshot}), checked so that a damaged file cannot
 * point BM25 outside the index: offsets rising from 0 to P, documents below `count`, frequencies of at least 1
 * (flat loops: checking each term's list on its own took as long as counting them).
 */
function readPostings(
  bytes: Uint8Array,
  vocabulary: number | undefined,
  count: number,
  bad: (why: string) => never,
): TermPostings {
  if (vocabulary === undefined) return bad('postings without terms');
  const all = view32(Int32Array, bytes);
  const p = (all.length - vocabulary - 1) / 2;
  if (!Number.isInteger(p) || p < 0) return bad('postings section of the wrong length');
  const offsets = all.subarray(0, vocabulary + 1);
  const docs = all.subarray(vocabulary + 1, vocabulary + 1 + p);
  const tfs = all.subarray(vocabulary + 1 + p);
  if (offsets[0] !== 0 || offsets[vocabulary] !== p) bad('postings out of range');
  for (let id = 0; id < vocabulary; id++) if (offsets[id + 1]! < offsets[id]!) bad('postings out of range');
  for (let k = 0; k < p; k++) if (docs[k]! >>> 0 >= count || tfs[k]! < 1) bad('postings out of range');
  return { offsets, docs, tfs };
}
