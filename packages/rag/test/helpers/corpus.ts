import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makePdf } from './make-pdf.js';

/** Writes a small mixed corpus (Markdown, text, a 2-page PDF, a German Markdown file) into `dir`. */
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
