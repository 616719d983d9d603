#!/usr/bin/env node
/**
 * Builds dictionary.json from the Ding German-English dictionary (Debian package `trans-de-en`, GPL-2.0+):
 *
 *   apt-get install trans-de-en      # or: apt-get download trans-de-en && dpkg-deb -x trans-de-en_*.deb x
 *   node scripts/build-dictionary.mjs [/usr/share/trans/de-en]
 *
 * Keeps word and short-phrase pairs (at most 3 words a side) that are useful for translating search
 * queries: annotations ({f}, [comp.], (...), <...>), "to " before English verbs and placeholders
 * (etw., jdn., sth., sb.) are removed; example sentences, idioms and slang/archaic senses are dropped.
 * Words are stored as their Snowball stems (the analyzer of @crp/rag stems the same way), which also merges
 * inflected forms. Every pair gets a weight from where it stands in its entry (first sense, first synonym = 1) summed over
 * the entries that contain it; per headword the 8 heaviest translations are kept, in both directions.
 *
 * Also writes forms.txt, the words as Ding writes them for each pair (a gloss shows "Datenbank", not the stem
 * `datenbank`): see writeForms below.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = process.argv[2] ?? '/usr/share/trans/de-en';
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'dictionary.json');
const text = readFileSync(source, 'utf8');
// the same Snowball stemmers as @crp/rag's analyzer: pairs that stem alike are one pair
const { newStemmer } = createRequire(
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'rag', 'package.json'),
)('snowball-stemmers');
// forms.txt is written and its edits checked by @crp/rag's own reader code (build it first, as for build-index)
const { applyFormEdit, formatWrittenForms } = await import(
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'rag', 'dist', 'translate', 'written-forms.js')
);
const stemDe = newStemmer('german');
const stemEn = newStemmer('english');
const stemKey = (phrase, stemmer) =>
  phrase
    .split(' ')
    .map((w) => stemmer.stem(w))
    .join(' ');
const version = /^# Version :: (.+)$/m.exec(text)?.[1]?.trim() ?? 'unknown';

// senses a query about software, science or technology never means: register, dialect, and far-away domains
const DROP_MARKS =
  /\[(archaic|obs\.|slang|vulg\.|pej\.|humor\.|coll\.|ugs\.|Kindersprache|children’s speech|poet\.|old|veraltet|Jägersprache|hunters’ parlance|rare|selten|Schw\.|Ös\.|Süddt\.|Norddt\.|ornith\.|zool\.|bot\.|cook\.|geogr\.|anat\.|textil\.|mus\.|relig\.|hist\.|min\.|agr\.|naut\.|aviat\.|mil\.|geol\.|sport|hunt\.|equest\.)\]/i;
const DE_PLACEHOLDERS = new Set(['etw.', 'jdn.', 'jdm.', 'jds.', 'jd.', 'sich', 'etw', 'jdn', 'jdm']);
const EN_PLACEHOLDERS = new Set(['sth.', 'sb.', "sb.'s", 'sth', 'sb', 'oneself', "sth.'s", 'one’s', "one's"]);
const WORD = /^[\p{L}][\p{L}\p{M}'’-]*$/u;
/** An abbreviation set off by slashes and spaces: " /Str./", " /Rd/" (not "and/or", "input/output"). */
const ABBREVIATION = /(?<=^|\s)\/[^/\s][^/]{0,15}\/(?=\s|$)/gu;

function clean(term, placeholders, isEnglish) {
  if (DROP_MARKS.test(term)) return undefined;
  let t = term
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\([^)]*\)/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    // an abbreviation between slashes ("Straße {f} /Str./", "road /Rd/") says no other word: without this the
    // word check below drops the whole term, and Straße lost street and road
    .replace(ABBREVIATION, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (isEnglish) t = t.replace(/^to /, '');
  const words = t.split(' ').filter((w) => w && !placeholders.has(w.toLowerCase()));
  if (words.length === 0 || words.length > (isEnglish ? 3 : 2)) return undefined;
  if (!words.every((w) => WORD.test(w))) return undefined;
  return words.join(' ');
}

/** summed weight of each pair of stems "de\ten" */
const byStems = new Map();
/** per pair of stems, its written pairs "German\tEnglish" with their summed weights */
const formsOf = new Map();
for (const line of text.split('\n')) {
  if (!line || line.startsWith('#')) continue;
  const sides = line.split(' :: ');
  if (sides.length !== 2) continue;
  const de = sides[0].split(' | ');
  const en = sides[1].split(' | ');
  if (de.length !== en.length) continue;
  // only the first sense of an entry: later ones are inflections (Regeln, gespeichert), phrases and examples
  for (let s = 0; s < 1; s++) {
    const deSyn = de[s].split(/; /);
    const enSyn = en[s].split(/; /);
    deSyn.forEach((d, i) => {
      const dc = clean(d, DE_PLACEHOLDERS, false);
      if (!dc) return;
      enSyn.forEach((e, j) => {
        const ec = clean(e, EN_PLACEHOLDERS, true);
        if (!ec) return;
        const w = 1 / (1 + s) / (1 + 0.5 * i) / (1 + 0.5 * j);
        const stems = `${stemKey(dc.toLowerCase(), stemDe)}\t${stemKey(ec.toLowerCase(), stemEn)}`;
        byStems.set(stems, (byStems.get(stems) ?? 0) + w);
        if (!formsOf.has(stems)) formsOf.set(stems, new Map());
        const forms = formsOf.get(stems);
        forms.set(`${dc}\t${ec}`, (forms.get(`${dc}\t${ec}`) ?? 0) + w);
      });
    });
  }
}

const weights = byStems;
/** Written pairs kept per pair of stems in forms.txt (see writeForms). */
const FORMS_PER_PAIR = 8;
const KEEP = 6;
const byDe = new Map();
const byEn = new Map();
for (const [key, w] of weights) {
  const [d, e] = key.split('\t');
  if (!byDe.has(d)) byDe.set(d, []);
  if (!byEn.has(e)) byEn.set(e, []);
  byDe.get(d).push([key, w]);
  byEn.get(e).push([key, w]);
}
const kept = new Set();
for (const m of [byDe, byEn]) {
  for (const list of m.values()) {
    list.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [key] of list.slice(0, KEEP)) kept.add(key);
  }
}
const sortedKeys = [...kept].sort();
const pairs = sortedKeys.map((key) => `${key}\t${Math.round(weights.get(key) * 100) / 100}`);
const data = {
  name: 'Ding German-English dictionary, word and short-phrase pairs for query translation',
  source: `Ding ${version} (Frank Richter, TU Chemnitz), Debian package trans-de-en`,
  license: 'GPL-2.0-or-later',
  format:
    'one pair a line: german TAB english TAB weight; words are Snowball stems (german, english) of the lower-cased words, as snowball-stemmers 0.6 gives them; phrases are stems joined by one space',
  count: pairs.length,
  pairs: pairs.join('\n'),
};
writeFileSync(out, `${JSON.stringify(data)}\n`);
console.log(`${pairs.length} pairs from ${weights.size} candidates -> ${out}`);
writeForms();

/**
 * forms.txt: for each pair of dictionary.json, in the same order, the German and the English side as Ding writes
 * them (capitals, umlauts, whole words: "Datenbank", "Verknüpfung", "database"), so a gloss can show words, not
 * stems. A stem collision gets each pair's own forms: the pair Modul/module says "module", Modulation/modulation
 * "modulation". Where several written pairs stem alike (betrachten/consider and beträchtlich/considerable are both
 * `betracht`/`consid`), up to FORMS_PER_PAIR are kept, heaviest (then shortest) first, so a gloss can take the
 * one of the word it glosses.
 *
 * A line is "German TAB English" for each written pair, where there are several each followed by "TAB share", its
 * percent of the pair's weight (a line of one has none: it is all of it); each side is written as an edit of its
 * stem, to keep the file small: "" is the stem itself, "^" capitalises
 * the first letter, "N+tail" drops the stem's last N letters (N omitted when 0) and appends tail, "=form" is the
 * form whole ("databas" with "+e" is "database", "verknupf" with "^3+üpfung" is "Verknüpfung"). The first line
 * is a JSON header: the number of pairs and the length of the pairs string, to refuse forms of another
 * dictionary.json, and the byte offsets of every 64th line, so a reader finds a line without scanning the file
 * (@crp/rag: src/translate/written-forms.ts reads it).
 */
function writeForms() {
  const lines = sortedKeys.map((key) => {
    const stems = key.split('\t');
    const written = [...formsOf.get(key)]
      .sort((a, b) => b[1] - a[1] || a[0].length - b[0].length || (a[0] < b[0] ? -1 : 1))
      .slice(0, FORMS_PER_PAIR);
    // several written pairs: each with its share of the pair's weight, so a gloss weighs the pair by the written
    // pairs of the word it glosses ("ausführen" is a small part of ausfuhr/export, mostly the noun Ausfuhr)
    const share = (w) => (written.length > 1 ? `\t${Math.round((100 * w) / weights.get(key))}` : '');
    return written
      .map(([forms, w]) => {
        const [de, en] = forms.split('\t');
        return `${formEdit(stems[0], de)}\t${formEdit(stems[1], en)}${share(w)}`;
      })
      .join('\t');
  });
  const file = join(dirname(out), 'forms.txt');
  writeFileSync(file, formatWrittenForms(lines, data.pairs.length));
  console.log(`written forms of ${lines.length} pairs -> ${file}`);
}

/** The edit that turns a stem into its written form (see writeForms), checked by applying it. */
function formEdit(stem, form) {
  const cap = form[0] !== form[0].toLowerCase();
  const low = cap ? form[0].toLowerCase() + form.slice(1) : form;
  let k = 0;
  while (k < stem.length && k < low.length && stem[k] === low[k]) k++;
  const drop = stem.length - k;
  const tail = low.slice(k);
  const edit = `${cap ? '^' : ''}${drop === 0 && tail === '' ? '' : `${drop === 0 ? '' : drop}+${tail}`}`;
  return applyFormEdit(stem, edit) === form ? edit : `=${form}`;
}
