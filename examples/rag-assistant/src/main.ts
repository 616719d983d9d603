/**
 * The explainable RAG assistant on the shared corpus (../shared/rag-corpus beside the repository): index its
 * documents (incrementally: a second run embeds nothing), ask three of the questions of its qa.json, print
 * each answer with its citations and why each source was retrieved (the question's keywords it shares, with
 * their BM25 weights), and write the explanation pictures as SVG files.
 *
 *   npx tsx examples/rag-assistant/src/main.ts [CORPUS_DIR] [OUT_DIR]     (from the repository root)
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RagEngine } from '@crp/rag';

const REPO = resolve(import.meta.dirname, '../../..');
const CORPUS = resolve(process.argv[2] ?? join(REPO, '../shared/rag-corpus'));
const OUT = resolve(process.argv[3] ?? 'out');
const INDEX_DIR = join(OUT, 'rag-index');
const SVG_DIR = join(OUT, 'rag-assistant');
/** One question about CRP, one about zennit's composites, one in German. */
const QUESTION_IDS = ['s06', 's18', 's29'];

interface QaFile {
  questions: { id: string; question: string; relevant_files: string[]; reference_answer: string }[];
}

async function main(): Promise<void> {
  await mkdir(SVG_DIR, { recursive: true });

  // 1. open (or create) the index and bring it up to date: only new or changed files are embedded
  const rag = await RagEngine.open({ dir: INDEX_DIR });
  let lastPhase = '';
  const report = await rag.update(join(CORPUS, 'docs'), {
    onProgress: (p) => {
      if (p.phase !== lastPhase || p.done === p.total)
        process.stderr.write(`\r  ${p.phase} ${p.done}/${p.total}   `);
      if (p.done === p.total) process.stderr.write('\n');
      lastPhase = p.phase;
    },
  });
  console.log(
    `index ${INDEX_DIR}: ${report.chunkCount} chunks, ${report.embeddedChunks} embedded in this run` +
      (report.skipped.length > 0 ? `, skipped: ${report.skipped.map((s) => s.file).join(', ')}` : ''),
  );

  // 2. three questions of the corpus' QA set
  const qa = JSON.parse(await readFile(join(CORPUS, 'qa.json'), 'utf8')) as QaFile;
  for (const id of QUESTION_IDS) {
    const q = qa.questions.find((x) => x.id === id)!;
    const a = await rag.ask(q.question, { topK: 3 });
    console.log(`\n## ${id}: ${q.question}\n`);
    console.log(a.answer);
    console.log(
      `\n(${a.mode} answer, ${a.grounded ? 'every sentence supported by a source' : 'not fully grounded'})`,
    );
    console.log(`expected source: ${q.relevant_files.join(', ')}`);

    // 3. why each source was retrieved: scores and the question's keywords found in it
    for (const src of a.sources) {
      const kw = a.explanation?.keywords.find((k) => k.source === src.n);
      const shared = kw?.shared.map((s) => `${s.word} (${s.weight.toFixed(2)})`).join(', ') || 'none';
      console.log(
        `  [${src.n}] ${src.citation} score ${src.score.toFixed(3)} (dense ${src.denseScore.toFixed(3)}, lexical ${src.lexicalScore.toFixed(3)})`,
      );
      console.log(`      shared keywords: ${shared}`);
      if (kw && kw.missing.length > 0) console.log(`      not in this source: ${kw.missing.join(', ')}`);
    }

    // 4. the explanation pictures: embedding map, sentence heatmap and keyword chips per source
    const svg = a.explanation?.svg;
    if (svg) {
      if (svg.embeddingMap) await writeFile(join(SVG_DIR, `${id}-embedding-map.svg`), svg.embeddingMap);
      for (const [i, s] of svg.sentenceHeatmaps.entries())
        await writeFile(join(SVG_DIR, `${id}-source${i + 1}-sentences.svg`), s);
      for (const [i, s] of svg.keywords.entries())
        await writeFile(join(SVG_DIR, `${id}-source${i + 1}-keywords.svg`), s);
    }
  }
  console.log(`\nexplanation pictures in ${SVG_DIR}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
