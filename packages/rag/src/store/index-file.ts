import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describeError, RagError } from '../errors.js';
import type { DocumentFormat } from '../ingest/document.js';
import type { Chunk, Language } from '../types.js';
import { writeFileAtomic } from './atomic-write.js';

/** What the index remembers of one source file. */
export interface FileRecord {
  /** SHA-256 of the file bytes. */
  readonly hash: string;
  readonly title: string;
  readonly format: DocumentFormat;
  readonly language: Language;
  readonly pages: number;
  readonly bytes: number;
  readonly chunkIds: readonly string[];
}

/** Everything an index holds; `vectors[i]` belongs to `chunks[i]`. */
export interface IndexSnapshot {
  readonly embeddingId: string;
  readonly dimensions: number;
  readonly chunking: { readonly chunkSize: number; readonly chunkOverlap: number };
  readonly sourceDir?: string;
  readonly files: Readonly<Record<string, FileRecord>>;
  readonly chunks: readonly Chunk[];
  readonly vectors: readonly Float32Array[];
  /** Keys of external vector stores that hold all of these vectors. */
  readonly syncedStores: readonly string[];
  readonly updatedAt: string;
}

const MAGIC = 'CRPRAG01';
const HEADER = 8 + 4 * 3;

/** Name of the index file inside an index folder. */
export const INDEX_FILE = 'index.crprag';

/**
 * Serialises a snapshot: magic, JSON length, dimensions, vector count, the JSON (files, chunks, settings),
 * padding to 4 bytes and the vectors as little-endian float32.
 */
export function encodeSnapshot(s: IndexSnapshot): Uint8Array[] {
  const { vectors, ...rest } = s;
  const json = Buffer.from(JSON.stringify(rest), 'utf8');
  const pad = (4 - (json.byteLength % 4)) % 4;
  const header = Buffer.alloc(HEADER);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt32LE(json.byteLength, 8);
  header.writeUInt32LE(s.dimensions, 12);
  header.writeUInt32LE(vectors.length, 16);
  const data = new Float32Array(vectors.length * s.dimensions);
  vectors.forEach((v, i) => {
    if (v.length !== s.dimensions) {
      throw new RagError(
        'STORE_FAILED',
        `Vector ${i} has ${v.length} dimensions; the index has ${s.dimensions}.`,
      );
    }
    data.set(v, i * s.dimensions);
  });
  return [header, json, Buffer.alloc(pad), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
}

/** Parses what {@link encodeSnapshot} wrote; a `CORRUPT_INDEX` error if the bytes are not a whole index. */
export function decodeSnapshot(buf: Buffer, name = 'index'): IndexSnapshot {
  const bad = (why: string): never => {
    throw new RagError(
      'CORRUPT_INDEX',
      `${name} is not a readable @crp/rag index (${why}); delete it and index again.`,
    );
  };
  if (buf.byteLength < HEADER || buf.toString('latin1', 0, 8) !== MAGIC) bad('wrong header');
  const jsonLength = buf.readUInt32LE(8);
  const dims = buf.readUInt32LE(12);
  const count = buf.readUInt32LE(16);
  const jsonEnd = HEADER + jsonLength;
  const dataStart = jsonEnd + ((4 - (jsonLength % 4)) % 4);
  if (buf.byteLength !== dataStart + count * dims * 4)
    bad(`expected ${dataStart + count * dims * 4} bytes, found ${buf.byteLength}`);
  let rest: Omit<IndexSnapshot, 'vectors'>;
  try {
    rest = JSON.parse(buf.toString('utf8', HEADER, jsonEnd)) as Omit<IndexSnapshot, 'vectors'>;
  } catch (error) {
    return bad(`bad JSON: ${describeError(error)}`);
  }
  if (rest.chunks.length !== count) bad(`${rest.chunks.length} chunks but ${count} vectors`);
  const all = new Float32Array(count * dims);
  new Uint8Array(all.buffer).set(buf.subarray(dataStart, dataStart + count * dims * 4));
  const vectors = Array.from({ length: count }, (_, i) => all.subarray(i * dims, (i + 1) * dims));
  return { ...rest, vectors };
}

/** Reads the index of a folder; `undefined` when there is none yet. */
export async function readIndexFile(dir: string): Promise<IndexSnapshot | undefined> {
  const file = path.join(dir, INDEX_FILE);
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RagError('STORE_FAILED', `Cannot read ${file}: ${describeError(error)}`, { cause: error });
  }
  return decodeSnapshot(buf, file);
}

/** Writes the index of a folder atomically (temporary file + rename). */
export async function writeIndexFile(dir: string, snapshot: IndexSnapshot): Promise<void> {
  await mkdir(dir, { recursive: true });
  try {
    await writeFileAtomic(path.join(dir, INDEX_FILE), encodeSnapshot(snapshot));
  } catch (error) {
    if (error instanceof RagError) throw error;
    throw new RagError('STORE_FAILED', `Cannot write the index in ${dir}: ${describeError(error)}`, {
      cause: error,
    });
  }
}
