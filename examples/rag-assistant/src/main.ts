/**
 * The explainable RAG assistant on the RAG corpus vendored in this repository (vendor/rag-corpus): index its
 * documents (incrementally: a second run embeds nothing), ask four questions of its QA sets (one in German, one
 * in English whose answer is only in a German document), print each answer with its citations, languages and
 * grounding, why each source was retrieved (the question's words it shares, through a translation or not, with
 * their BM25 weights), and write the explanation pictures as SVG files.
 *
 *   pnpm install && pnpm build                                              (once, from the repository root)
 *   npx tsx examples/rag-assistant/src/main.ts [CORPUS_DIR] [OUT_DIR]     (from the repository root)
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RagEngine } from '@crp/rag/node';

const REPO = resolve(import.meta.dirname, '../../..');
const CORPUS = resolve(process.argv[2] ?? process.env.CRP_RAG_CORPUS ?? join(REPO, 'vendor/rag-corpus'));
const OUT = resolve(process.argv[3] ?? 'out');
const INDEX_DIR = join(OUT, 'rag-index');
const SVG_DIR = join(OUT, 'rag-assistant');
/** About CRP, about zennit's composites, one in German, one in English answered by a German document. */
const QUESTION_IDS = ['s06', 's18', 's29', 's25'];
const LANGUAGE = { en: 'English', de: 'German' } as const;

interface QaFile {
  questions: { id: string; question: string; relevant_files: string[]; reference_answer: string }[];
}

async function main(): Promise<void> {
  await mkdir(SVG_DIR, { recursive: true });

  // 1. open (or create) the index and bring it up to date: only new or changed files are embedded.
  //    Answers are extractive and offline (generator: null); pass createLlmGenerator(...) or set GROQ_API_KEY
  //    and leave generator out to have a language model write them.
  const rag = await RagEngine.open({ dir: INDEX_DIR, generator: null });
  let lastPhase = '';
  const report = await rag.update(join(CORPUS, 'docs'), {
    onProgress: (p) => {
      if (p.phase !== lastPhase || p.done === p.total)
        process.stderr.write(`\r  ${p.phase} ${p.done}/${p.total}   `);
      if (p.done === p.total) process.stderr.write('\n');
      lastPhase = p.phase ?? '';
    },
  });
  console.log(
    `index ${INDEX_DIR}: ${report.chunkCount} chunks, ${report.embeddedChunks} embedded in this run` +
      (report.skipped.length > 0 ? `, skipped: ${report.skipped.map((s) => s.file).join(', ')}` : ''),
  );
  console.log(
    `cross-lingual dictionary: ${rag.index.translator?.source ?? 'not installed (monolingual search)'}`,
  );

  // 2. four questions of the corpus' QA set
  const qa = JSON.parse(await readFile(join(CORPUS, 'qa.json'), 'utf8')) as QaFile;
  for (const id of QUESTION_IDS) {
    const q = qa.questions.find((x) => x.id === id)!;
    const a = await rag.ask(q.question, { topK: 3 });
    console.log(`\n## ${id}: ${q.question}\n`);
    console.log(a.answer);
    console.log(
      `\n(${a.mode} answer in ${LANGUAGE[a.language]} to a question in ${LANGUAGE[a.questionLanguage]}; ` +
        `${a.sentences.filter((s) => s.label === 'quotation').length} quoted sentence(s)` +
        `${a.grounded ? '' : ', NOT fully grounded'})`,
    );
    console.log(`expected source: ${q.relevant_files.join(', ')}`);

    // 3. why each source was retrieved: scores and the question's words found in it
    for (const src of a.sources) {
      const kw = a.explanation?.keywords.find((k) => k.source === src.n);
      const shared =
        kw?.shared
          .map((s) => `${s.word}${s.translated ? ' (translated)' : ''} ${s.weight.toFixed(2)}`)
          .join(', ') || 'none';
      console.log(
        `  [${src.n}] ${src.citation} (${LANGUAGE[src.language]}) score ${src.score.toFixed(3)} ` +
          `(dense ${src.denseScore.toFixed(3)}, lexical ${src.lexicalScore.toFixed(3)})`,
      );
      console.log(`      shared words: ${shared}`);
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
