/**
 * A stem as English and German spell the shared (mostly Latin and Greek) technical vocabulary alike: lower
 * case, umlauts without their dots, c/z as k ("concept"/"Konzept", "metric"/"Metrik"), ph as f, th as t, y as
 * i, doubled letters once.
 */
export function spelling(stem: string): string {
  let out = spellings.get(stem);
  if (out === undefined) {
    out = respell(stem);
    // a gloss asks for the same stems again and again (each word's translations)
    if (spellings.size >= 50_000) spellings.clear();
    spellings.set(stem, out);
  }
  return out;
}

const spellings = new Map<string, string>();

function respell(stem: string): string {
  return stem
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/ph/g, 'f')
    .replace(/th/g, 't')
    .replace(/[cz]/g, 'k')
    .replace(/y/g, 'i')
    .replace(/(.)\1/g, '$1');
}

/**
 * Whether two stems of English and German are the same word in the two spellings (a cognate): with the
 * spelling normalised (c and z as k, ph as f, ...), one is the start of the other and only an ending differs
 * ("discrep"/"diskrepanz", "metric"/"metrik", "rate"/"rat", "sponsor"/"sponsor"). Only asked of pairs the
 * dictionary gives as translations, so look-alikes it does not pair ("actual"/"aktuell") never count; short
 * stems must differ by at most one letter.
 */
export function isCognate(a: string, b: string): boolean {
  if (a.includes(' ') || b.includes(' ')) return false;
  const x = spelling(a);
  const y = spelling(b);
  const [short, long] = x.length <= y.length ? [x, y] : [y, x];
  if (short.length < 3 || !long.startsWith(short)) return false;
  return long.length - short.length <= (short.length >= 5 ? 3 : 1);
}

/** Whether two stems of English and German are spelt alike once the spelling is normalised ("modul"/"modul"). */
export function sameSpelling(a: string, b: string): boolean {
  return spelling(a) === spelling(b);
}
