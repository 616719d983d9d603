// Child process for the crash test: writes big index snapshots in a loop until it is killed.
import { writeIndexFile } from '../../src/node.js';

const dir = process.argv[2]!;
const dims = 256;
const count = 40_000;
const vectors = Array.from({ length: count }, (_, i) => new Float32Array(dims).fill(i % 7));
const chunks = vectors.map((_, i) => ({
  id: `big#${i}`,
  text: `chunk ${i}`,
  metadata: { file: 'big.md', title: 'Big', startChar: 0, endChar: 1, language: 'en' as const },
}));
process.send?.('ready');
for (;;) {
  await writeIndexFile(dir, {
    embeddingId: 'new',
    dimensions: dims,
    chunking: { chunkSize: 200, chunkOverlap: 40 },
    files: {},
    chunks,
    vectors,
    syncedStores: [],
    updatedAt: new Date().toISOString(),
  });
}
