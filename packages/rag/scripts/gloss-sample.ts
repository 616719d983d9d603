/**
 * `pnpm --filter @crp/rag exec tsx scripts/gloss-sample.ts collect OUT.json [--index DIR] [--qa FILE ...]`
 * `pnpm --filter @crp/rag exec tsx scripts/gloss-sample.ts sample OUT.json [--index DIR] [--language en]`
 * `pnpm --filter @crp/rag exec tsx scripts/gloss-sample.ts gloss IN.json OUT.json [--index DIR] [--without-words]`
 * `pnpm --filter @crp/rag exec tsx scripts/gloss-sample.ts compare BEFORE.json AFTER.json`
 *
 * The gloss as a reader sees it, on the sentences the evaluation quotes: `collect` asks every question of the QA
 * files (the tuning sets by default) and keeps each quotation shown with a gloss (its text and language, without
 * the question); `sample` takes prose sentences of every 7th German chunk instead (`--language en`: of every 7th
 * English chunk); `gloss` glosses those texts
 * again with the current code and the index's usage as `crp-rag ask` does (`--without-words`: without the
 * chunks' words as written), so two runs (before and after a change to the gloss) can be compared line by line
 * without asking again; `compare` prints, per sentence whose gloss changed (German ones first), each word's gloss
 * before and after.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { chunkWordUsage, glossSentence, type Language, type TermUsage, tagTerm } from '../src/node.js';
import { openTuningEngine, readQuestions, TUNING_ARG_OPTIONS } from './tuning-engine.js';

const { values, positionals } = parseArgs({
  options: {
    ...TUNING_ARG_OPTIONS,
    'without-words': { type: 'boolean' },
    language: { type: 'string', default: 'de' },
  },
  allowPositionals: true,
});
const [mode, first, second] = positionals;

interface Quote {
  readonly text: string;
  readonly from: Language;
}

if (mode === 'compare' && first && second) {
  const read = async (file: string) =>
    JSON.parse(await readFile(file, 'utf8')) as (Quote & { gloss: string })[];
  const [before, after] = [await read(first), await read(second)];
  const glossed = (gloss: string) =>
    new Map([...gloss.matchAll(/([\p{L}-]+) \[([^\]]+)\]/gu)].map((m) => [m[1]!, m[2]!]));
  for (const language of ['de', 'en'] as const) {
    let changed = 0;
    for (const [i, b] of before.entries()) {
      const a = after[i]!;
      if (b.from !== language || a.gloss === b.gloss) continue;
      changed++;
      const [x, y] = [glossed(b.gloss), glossed(a.gloss)];
      const words = [...new Set([...x.keys(), ...y.keys()])].filter((w) => x.get(w) !== y.get(w));
      console.log(words.map((w) => `${w}: ${x.get(w)} -> ${y.get(w)}`).join(' | '));
    }
    const all = before.filter((q) => q.from === language).length;
    console.log(
      `${changed} of ${all} ${language === 'de' ? 'German' : 'English'} sentences glossed otherwise`,
    );
  }
  process.exit(0);
}

const { qaFiles, engine } = await openTuningEngine(values);
const translator = engine.index.translator;
if (!translator) throw new Error('the index has no dictionary: the gloss needs @crp/rag-dictionary-de-en');

if (mode === 'collect' && first) {
  const quotes = new Map<string, Quote>();
  for (const file of qaFiles)
    for (const q of await readQuestions(file)) {
      const a = await engine.ask(q.question, { topK: 5, explain: false });
      for (const s of a.sentences) {
        // grounding keeps a quotation's citations, not its span: the first citation is its source
        const source = s.gloss ? a.sources[s.citations[0]! - 1] : undefined;
        if (!source) continue;
        const text = s.text.replace(source.citation, '').trim();
        quotes.set(text, { text, from: source.language });
      }
    }
  await writeFile(first, JSON.stringify([...quotes.values()], null, 1));
  console.log(`${quotes.size} glossed quotations -> ${first}`);
} else if (mode === 'sample' && first) {
  // every 7th chunk's prose sentences of 6 to 40 words: a sample of the corpus beside the quotations
  const language = values.language === 'en' ? 'en' : 'de';
  const quotes: Quote[] = [];
  engine.index.chunks.forEach((c, i) => {
    if (c.metadata.language !== language || i % 7 !== 0) return;
    for (const s of c.text.split(/(?<=[.!?])\s+/)) {
      const n = s.split(/\s+/).length;
      if (n >= 6 && n <= 40 && !/[{}<>=$]/.test(s))
        quotes.push({ text: s.replace(/\s+/g, ' ').trim(), from: language });
    }
  });
  await writeFile(first, JSON.stringify(quotes.slice(0, 600), null, 1));
  console.log(`${Math.min(600, quotes.length)} sampled sentences -> ${first}`);
} else if (mode === 'gloss' && first && second) {
  const quotes = JSON.parse(await readFile(first, 'utf8')) as Quote[];
  const bm25 = engine.index.bm25;
  const usage: TermUsage = (stem, lang) => bm25.documentFrequency(tagTerm(lang, stem));
  const forms = new Map<string, number>();
  for (const c of engine.index.chunks) {
    for (const w of new Set(c.text.toLowerCase().match(/\p{L}+/gu) ?? []))
      forms.set(`${c.metadata.language}:${w}`, (forms.get(`${c.metadata.language}:${w}`) ?? 0) + 1);
  }
  (globalThis as { formUsage?: (w: string, l: string) => number }).formUsage = (w, l) =>
    (forms.get(`${l}:${w}`) ?? 0) + (forms.get(`${l}:${w}s`) ?? 0);
  const words = values['without-words'] ? undefined : chunkWordUsage(engine.index.chunks);
  const out = quotes.map((q) => ({ ...q, gloss: glossSentence(q.text, q.from, translator, usage, words) }));
  await writeFile(second, JSON.stringify(out, null, 1));
  console.log(`${out.length} glosses -> ${second}`);
} else {
  throw new Error(
    'usage: gloss-sample.ts collect OUT.json | sample OUT.json | gloss IN.json OUT.json | compare BEFORE.json AFTER.json (then --index, --qa)',
  );
}
