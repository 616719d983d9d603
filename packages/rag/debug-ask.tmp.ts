import { RagEngine, UseLiteEmbedding } from './src/node.js';

const e = await RagEngine.open({ dir: '/tmp/eval-static', embedding: new UseLiteEmbedding(), generator: null });
const q = process.argv[2]!;
const a = await e.ask(q, { explain: true });
console.log(
  'concepts',
  e.index
    .analyzeQuestion(q)
    .concepts.map(
      (c) => `${c.word}{${c.terms.map((t) => t.term + (t.via === 'translation' ? '*' : '')).join(',')}}`,
    )
    .join(' '),
);
for (const s of a.sources)
  console.log(
    `[${s.n}] ${s.citation} ${s.score.toFixed(3)} lex=${s.lexicalScore.toFixed(2)} dense=${s.denseScore.toFixed(3)} ${s.section ?? ''}`,
  );
const hm = a.explanation!.sentenceHeatmaps.flatMap((h) => h.sentences.map((s) => ({ ...s, src: h.source })));
for (const s of hm.sort((x, y) => y.score - x.score).slice(0, Number(process.argv[3] ?? 8)))
  console.log(
    `${s.score.toFixed(3)} src${s.src} ${s.kind} lex=${s.lexical.toFixed(2)} nov=${s.novelty.toFixed(2)} dense=${s.dense.toFixed(2)} | ${s.text.slice(0, 150)}`,
  );
console.log('ANSWER:', a.answer);
