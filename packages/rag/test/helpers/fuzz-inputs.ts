// Seeds and the seeded mutator of the ingestion fuzz test (test/fuzz.test.ts and its PDF child process).
import { makePdf } from './make-pdf.js';

export const MARKDOWN = `---
title: Rules "and" composites
---
# Rules

The *epsilon* rule adds a small term to the denominator; see [zennit](https://example.org/zennit).

## Composites

| name | first layer | other layers |
| --- | --- | --- |
| EpsilonPlusFlat | Flat | Epsilon / ZPlus |

* a list item with \`code\` and **bold**
  1. nested ordered item
> a quote
> over two lines

\`\`\`python
composite = EpsilonPlusFlat()
\`\`\`

<div class="note"><p>HTML inside <b>Markdown</b> &amp; entities &#x41;</p></div>

![alt text](img.png) Text after an image.[^1]

[^1]: A footnote.
`;

export const HTML = `<!doctype html><html><head><title>Vektoren &amp; Datenbanken</title>
<style>p { color: red }</style><script>var x = "<p>not text</p>";</script></head>
<body><h1>Vektor-Datenbanken</h1><!-- a comment -->
<p>Wir speichern unsere <em>Einbettungen</em> in Vektor-Datenbanken.<br>Zweite Zeile.</p>
<ul><li>Pinecone</li><li>Chroma<ul><li>lokal</li></ul></li></ul>
<table><tr><th>Maß</th><th>Formel</th></tr><tr><td>Kosinus</td><td>a&middot;b</td></tr></table>
<pre><code>nbrs = NearestNeighbors(n_neighbors=5)</code></pre>
<a href="x">Link</a> &nbsp; &unknown; &#99999999; <img alt="Katze" src="c.png"></body></html>`;

export const PDF = makePdf(
  [
    ['Zennit: Rules', 'The epsilon rule adds a small term to the denominator.', 'def f(x): return x'],
    ['Composites map rules to layers.', 'EpsilonGammaBox needs low and high.'],
  ],
  'Rules',
);

// Characters that mean something to one of the parsers
const SPECIAL = [...'#*_`[]()<>|!-=:>~&;\\/"\'\n\t{}$%0123456789'].map((c) => c.charCodeAt(0));

export function mutate(seed: Uint8Array, rand: () => number, others: readonly Uint8Array[]): Uint8Array {
  let b = Array.from(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const steps = 1 + pick(6);
  for (let s = 0; s < steps; s++) {
    const at = pick(b.length + 1);
    switch (pick(7)) {
      case 0: // flip bits
        if (b.length) b[pick(b.length)]! ^= 1 << pick(8);
        break;
      case 1: // insert parser-relevant characters
        b.splice(at, 0, ...Array.from({ length: 1 + pick(8) }, () => SPECIAL[pick(SPECIAL.length)]!));
        break;
      case 2: // insert random bytes (invalid UTF-8 included)
        b.splice(at, 0, ...Array.from({ length: 1 + pick(16) }, () => pick(256)));
        break;
      case 3: // delete a range
        b.splice(at, pick(64));
        break;
      case 4: // duplicate a range (nesting, repeated structure)
        b.splice(at, 0, ...b.slice(pick(b.length), pick(b.length) + pick(200)));
        break;
      case 5: // truncate
        b = b.slice(0, at);
        break;
      default: {
        // splice in a piece of another format
        const o = others[pick(others.length)]!;
        const from = pick(o.length);
        b.splice(at, 0, ...o.slice(from, from + pick(300)));
      }
    }
  }
  return Uint8Array.from(b);
}

/** The three seeds as bytes, for splicing one format into another. */
export const SEEDS: readonly Uint8Array[] = [
  new TextEncoder().encode(MARKDOWN),
  new TextEncoder().encode(HTML),
  PDF,
];
