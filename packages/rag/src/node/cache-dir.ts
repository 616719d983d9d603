import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Where `crp-rag` keeps what it computes once per machine (piece table, stems, the dictionary's checksum):
 * `CRP_RAG_CACHE_DIR`, else `<tmpdir>/crp-rag-cache`.
 */
export function ragCacheDir(): string {
  return process.env.CRP_RAG_CACHE_DIR || path.join(tmpdir(), 'crp-rag-cache');
}
