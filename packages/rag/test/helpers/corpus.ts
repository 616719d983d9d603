import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makePdf } from './make-pdf.js';

/**
 * Writes a small mixed corpus into `dir`: Markdown with a table, code and an HTML block, a text file, a 2-page
 * PDF, and a German Markdown file that an English question must find.
 */
export async function writeSmallCorpus(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  await writeFile(
    path.join(dir, 'lrp.md'),
    [
      '---',
      'title: Layer-wise Relevance Propagation',
      '---',
      '# LRP',
      '',
      'Layer-wise relevance propagation explains a prediction by redistributing the output relevance backwards through the network.',
      '',
      '## Epsilon rule',
      '',
      'The epsilon rule adds a small stabiliser to the denominator. It absorbs weak or contradictory relevance.',
      '',
      '## Gamma rule',
      '',
      'The gamma rule favours positive contributions. It is used for convolutional layers in many composites.',
      '',
      '## Methods compared',
      '',
      '| Method | Forward passes only | Needs gradients |',
      '| --- | --- | --- |',
      '| Occlusion | yes | no |',
      '| Saliency | no | yes |',
      '',
      '```python',
      'attribution = CondAttribution(model)',
      '```',
      '',
      '<details><summary>More</summary><p>See the <a href="https://example.org/lrp">LRP overview</a> for details.</p></details>',
    ].join('\n'),
  );
  await writeFile(
    path.join(dir, 'notes.txt'),
    'Notes on concepts\n\nConcept relevance propagation masks relevance flows of single channels. Each concept gets its own heatmap.\n',
  );
  await writeFile(
    path.join(dir, 'sub', 'vektor.md'),
    '# Vektordatenbanken\n\nWir speichern unsere Einbettungen in Vektor-Datenbanken, da Sprachmodelle eine Begrenzung der Anzahl an Token haben. Die Suche nach ähnlichen Abschnitten ist schnell.\n',
  );
  await writeFile(
    path.join(dir, 'shards.pdf'),
    makePdf(
      [
        ['TensorFlow.js converter guide.', 'The converter writes a model.json file and binary weight files.'],
        [
          'The command above creates shards of size 4 MB by default.',
          'Smaller shards load faster in a browser cache.',
        ],
      ],
      'Converter Guide',
    ),
  );
}

/** A tiny English-German dictionary in the format of @crp/rag-dictionary-de-en (stems). */
export const TINY_DICTIONARY = [
  'speich\tstore\t1',
  'speich\tsave\t0.8',
  'einbett\tembed\t1',
  'vektordatenbank\tvector databas\t1',
  'datenbank\tdatabas\t1',
  'vektor\tvector\t1',
  'grenz\tlimit\t1',
  'begrenz\tlimit\t1',
  'zustand\tstate\t1',
  'stand\tstate\t1',
  'stand\tstand\t0.2',
  'regel\trule\t1',
].join('\n');
