/**
 * snowball-stemmers 0.6.0 is one CommonJS module that defines the stemmer classes of 24 languages when it
 * loads (740 KB of source); @crp/rag stems only English and German. `keepSnowballLanguages` returns the module's
 * source with every other language's class left out (its name declared, undefined), for the `crp-rag` bundle:
 * the command then parses and runs a sixth of it. It throws when the source is not laid out as 0.6.0's is, so a
 * new version fails the build instead of being cut wrongly; a test compares its stems with the package's.
 */
export function keepSnowballLanguages(source, kept = ['english', 'german']) {
  const starts = [...source.matchAll(/^ {4}var (\w+)Stemmer = function \(_SnowballStemmer\d*\) \{$/gm)];
  const end = source.indexOf('\n    function newStemmer(lng) {');
  const names = starts.map((m) => m[1]);
  if (starts.length !== 24 || end < starts.at(-1).index || !kept.every((k) => names.includes(k)))
    throw new Error(
      `snowball-stemmers is not laid out as version 0.6.0 (found ${starts.length} stemmer classes); update scripts/snowball-languages.mjs`,
    );
  let out = source.slice(0, starts[0].index);
  starts.forEach((m, k) => {
    const to = k + 1 < starts.length ? starts[k + 1].index : end + 1;
    out += kept.includes(m[1]) ? source.slice(m.index, to) : `    var ${m[1]}Stemmer; // not bundled\n\n`;
  });
  return out + source.slice(end + 1);
}
