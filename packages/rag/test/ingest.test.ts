import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CrpError } from '@crp/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PdfLine,
  type PdfTextItem,
  pdfLines,
  pdfPageBlocks,
  runningLines,
} from '../src/ingest/pdf-layout.js';
import { loadDefaultTranslator } from '../src/node/default-translator.js';
import {
  chunkDocument,
  dehyphenate,
  extractPdfText,
  htmlToBlocks,
  loadDocument,
  markdownToBlocks,
  resolveChunking,
  scanFolder,
} from '../src/node.js';
import { hyphenLexicon } from '../src/translate/hyphen-lexicon.js';
import { writeSmallCorpus } from './helpers/corpus.js';
import { makeImageOnlyPdf, makePdf } from './helpers/make-pdf.js';
import { tempDir } from './helpers/temp-dir.js';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeSmallCorpus(dir);
});
afterAll(() => cleanup());

const pdfLoad = (file: string, bytes: Uint8Array) => loadDocument(file, bytes, { pdf: extractPdfText });

describe('Markdown and HTML to clean text', () => {
  it('keeps meaning and drops markup: links as text, emphasis and code spans unwrapped, lists as items', () => {
    const md = markdownToBlocks(
      [
        '# Guide',
        '',
        'Read the [**zennit** docs](https://zennit.readthedocs.io) and `CondAttribution`; see ![a CRP heatmap](h.png).[^1]',
        '',
        '- first *item* with a',
        '  continuation line',
        '1. numbered',
        '',
        '> quoted text',
        '',
        '[1]: https://example.org/ref',
      ].join('\n'),
    );
    expect(md.title).toBe('Guide');
    expect(md.blocks).toEqual([
      { kind: 'heading', text: 'Guide', level: 1, section: 'Guide' },
      {
        kind: 'paragraph',
        text: 'Read the zennit docs and CondAttribution; see a CRP heatmap.',
        section: 'Guide',
      },
      { kind: 'list-item', text: 'first item with a continuation line', section: 'Guide' },
      { kind: 'list-item', text: 'numbered', section: 'Guide' },
      { kind: 'quote', text: 'quoted text', section: 'Guide' },
    ]);
  });

  it('unwraps MkDocs admonitions instead of reading their indented body as code', () => {
    const { blocks } = markdownToBlocks(
      'Intro.\n\n!!! quote "Paper"\n    The deletion metric measures the drop.\n\n    Second line.\n\nAfter.\n',
    );
    expect(blocks.map((b) => [b.kind, b.text])).toEqual([
      ['paragraph', 'Intro.'],
      ['paragraph', 'The deletion metric measures the drop.'],
      ['paragraph', 'Second line.'],
      ['paragraph', 'After.'],
    ]);
  });

  it('turns a table into rows that carry their header, never a row cut from its header', () => {
    const { blocks } = markdownToBlocks(
      '| Method | Forward passes only |\n| :-- | --: |\n| Occlusion | yes |\n| Saliency | no |\n',
    );
    expect(blocks.map((b) => [b.kind, b.text])).toEqual([
      ['table-row', 'Method: Occlusion; Forward passes only: yes'],
      ['table-row', 'Method: Saliency; Forward passes only: no'],
    ]);
  });

  it('keeps code blocks verbatim as code, and HTML blocks inside Markdown become clean blocks', () => {
    const { blocks } = markdownToBlocks(
      [
        '## Use',
        '',
        '```python',
        'attribution = CondAttribution(model)  # load CRP toolbox',
        '```',
        '',
        '<table><tr><th>Name</th><th>Passes</th></tr><tr><td>LRP</td><td><b>1</b></td></tr></table>',
        '',
        '<p align="center">Figure <img src="x.png" alt="a CRP heatmap"> &amp; more</p>',
      ].join('\n'),
    );
    expect(blocks).toEqual([
      { kind: 'heading', text: 'Use', level: 2, section: 'Use' },
      {
        kind: 'code',
        text: 'attribution = CondAttribution(model)  # load CRP toolbox',
        lang: 'python',
        section: 'Use',
      },
      { kind: 'table-row', text: 'Name: LRP; Passes: 1', section: 'Use' },
      { kind: 'paragraph', text: 'Figure a CRP heatmap & more', section: 'Use' },
    ]);
  });

  it('drops badges, image links, label-only images and bare address lines; keeps captions of three words', () => {
    const { blocks } = markdownToBlocks(
      [
        '<div align="center">',
        '  <img src="logo.svg" alt="Tool Logo" />',
        '',
        '[![Build Status](https://github.com/o/r/actions/workflows/ci.yml/badge.svg)](https://github.com/o/r/actions)',
        '[![PyPI](https://img.shields.io/pypi/v/tool)](https://pypi.org/project/tool/) [![Python](https://img.shields.io/pypi/pyversions/tool.svg)](https://badge.fury.io/py/tool)',
        '',
        '![Different explanation methods on ImageNet.](https://example.org/grid.png)',
        '</div>',
        '',
        '![Tests status](https://img.shields.io/badge/tests-passing-brightgreen) ![Input image.](in.png)',
        '',
        '- [Getting started](https://colab.research.google.com/x) <sub>[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/x)</sub>',
        '- https://tool.readthedocs.io/en/latest/',
        '',
        'The documentation is at',
        '<https://tool.readthedocs.io>',
        'and in the repository.',
        '',
        'The paper:',
        'https://arxiv.org/abs/2106.13200',
        '',
        'Alber et al. (2019). Tool neural networks! Journal of ML, 20.](https://jmlr.org/papers/v20/18-540.html)',
        '',
        'Infidelity is defined as follows: ![infidelity_eq](/img/infidelity_eq.png)',
      ].join('\n'),
    );
    expect(blocks.map((b) => [b.kind, b.text])).toEqual([
      ['paragraph', 'Different explanation methods on ImageNet.'],
      ['list-item', 'Getting started'],
      // a sentence that runs through an address line keeps it, as it would on one line
      ['paragraph', 'The documentation is at https://tool.readthedocs.io and in the repository.'],
      ['paragraph', 'The paper:'],
      ['paragraph', 'Alber et al. (2019). Tool neural networks! Journal of ML, 20.'],
      ['paragraph', 'Infidelity is defined as follows:'],
    ]);
    expect(
      blocks.some((b) =>
        /shields|badge|Logo|Build Status|Tests status|arxiv|https?:\/\/(?!tool\.readthedocs\.io )/.test(
          b.text,
        ),
      ),
    ).toBe(false);
  });

  it('reads HTML pages: title, headings, lists, pre as code; scripts, styles and comments dropped', () => {
    const html = htmlToBlocks(
      '<html><head><title>Page</title><style>p{}</style></head><body><!-- note --><h1>Top</h1>' +
        '<p>Some <a href="/x">linked</a> text.</p><ul><li>One</li><li>Two</li></ul>' +
        '<pre class="language-js">const a = 1 &lt; 2;\nrun();</pre><script>alert(1)</script></body></html>',
    );
    expect(html.title).toBe('Page');
    expect(html.blocks).toEqual([
      { kind: 'heading', text: 'Top', level: 1, section: 'Top' },
      { kind: 'paragraph', text: 'Some linked text.', section: 'Top' },
      { kind: 'list-item', text: 'One', section: 'Top' },
      { kind: 'list-item', text: 'Two', section: 'Top' },
      { kind: 'code', text: 'const a = 1 < 2;\nrun();', lang: 'js', section: 'Top' },
    ]);
  });

  it('drops a Markdown footnote definition line, as a link reference definition (the corpus has cited titles there)', () => {
    const md = markdownToBlocks(
      [
        '# Tool',
        '',
        'The tool reads the archive.',
        '',
        '[^1]: A cited paper on archives (2019).',
        '',
        'Text again.',
      ].join('\n'),
    );
    expect(md.blocks.map((b) => `${b.kind}: ${b.text}`)).toEqual([
      'heading: Tool',
      'paragraph: The tool reads the archive.',
      'paragraph: Text again.',
    ]);
  });

  it('makes HTML footnote lists notes and leaves their markers and back links out', () => {
    const html = htmlToBlocks(
      '<h1>Tool</h1><p>The tool reads the archive<sup id="fnref:1"><a class="footnote-ref" href="#fn:1">1</a></sup>' +
        ' and writes a log<a href="#fn2" role="doc-noteref"><sup>2</sup></a>.</p>' +
        '<div class="footnote"><hr><ol><li id="fn:1"><p>See the format paper.' +
        '<a class="footnote-backref" href="#fnref:1">↩</a></p></li>' +
        '<li><div><p>Only when asked to.</p></div></li></ol></div><p>Text after the notes.</p>' +
        '<section data-footnotes><ol><li>A GitHub note <a href="#r" data-footnote-backref>↩</a></li></ol></section>' +
        '<aside role="doc-footnote">An aside note.</aside><p class="footnotes-intro">Not a note.</p>',
    );
    expect(html.blocks.map((b) => `${b.kind}: ${b.text}`)).toEqual([
      'heading: Tool',
      'paragraph: The tool reads the archive and writes a log.',
      'note: See the format paper.',
      'note: Only when asked to.',
      'paragraph: Text after the notes.',
      'note: A GitHub note',
      'note: An aside note.',
      'paragraph: Not a note.',
    ]);
  });
});

describe('chunking', () => {
  it('never crosses a section, puts a heading with its text, and records code spans', async () => {
    const doc = await pdfLoad('lrp.md', await readFile(path.join(dir, 'lrp.md')));
    expect(doc.title).toBe('Layer-wise Relevance Propagation');
    const chunks = chunkDocument(doc, { chunkSize: 200, chunkOverlap: 40 });
    expect(chunks.map((c) => c.metadata.section)).toEqual([
      'LRP',
      'LRP > Epsilon rule',
      'LRP > Gamma rule',
      'LRP > Methods compared',
    ]);
    expect(chunks[1]!.text).toBe(
      'Epsilon rule\n\nThe epsilon rule adds a small stabiliser to the denominator. It absorbs weak or contradictory relevance.',
    );
    const last = chunks[3]!;
    expect(last.text).not.toMatch(/[|`<>]|\]\(/); // no markup left
    const code = last.blocks!.filter((b) => b.kind === 'code');
    expect(code.map((b) => last.text.slice(b.start, b.end))).toEqual([
      'attribution = CondAttribution(model)',
    ]);
    expect(last.text).toContain('Method: Occlusion; Forward passes only: yes; Needs gradients: no');
    expect(last.text).toContain('See the LRP overview for details.');
  });

  it('cuts a long section at sentence boundaries with overlap, offsets pointing into the clean text', async () => {
    const sentences = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about relevance.`);
    const md = `# Long\n\n${sentences.join(' ')}\n`;
    const doc = await loadDocument('long.md', new TextEncoder().encode(md));
    const chunks = chunkDocument(doc, { chunkSize: 64, chunkOverlap: 16 });
    expect(chunks.length).toBeGreaterThan(4);
    for (const c of chunks) {
      expect(c.text.length / 4).toBeLessThanOrEqual(64);
      expect(c.text).toMatch(/^(Long|Sentence number \d+)/);
      expect(c.text).toMatch(/(Long|relevance\.)$/);
      expect(c.metadata.section).toBe('Long');
    }
    // consecutive chunks share their boundary sentence (overlap)
    const tail = chunks[1]!.text.split('. ').pop()!;
    expect(chunks[2]!.text.startsWith(tail.replace(/\.$/, ''))).toBe(true);
  });

  it("leaves a footnote out of a chunk's language: it often cites a work in another language", async () => {
    const prose =
      'Das Werkzeug schreibt das Archiv in den Ausgabeordner und leert ihn vorher, wenn er schon existiert. Danach prüft es die Dateien, die es geschrieben hat.';
    const note =
      'See the paper on the archive format and the tools that read it, which explains the layout of the files and the reasons for it.';
    const doc = await loadDocument(
      'werkzeug.html',
      new TextEncoder().encode(
        `<h1>Werkzeug</h1><p>${prose}</p><section class="footnotes"><ol><li>${note} ${note}</li></ol></section>`,
      ),
    );
    expect(doc.language).toBe('de');
    const [c] = chunkDocument(doc, { chunkSize: 400, chunkOverlap: 0 });
    expect(c!.blocks!.map((b) => b.kind)).toEqual(['heading', 'paragraph', 'note']);
    expect(c!.metadata.language).toBe('de');
  });

  it('checks chunking options', () => {
    expect(() => resolveChunking({ chunkSize: 8 })).toThrow(/\[16, 8192\]/);
    expect(() => resolveChunking({ chunkSize: 100, chunkOverlap: 100 })).toThrow(/\[0, 100\)/);
  });
});

describe('PDF', () => {
  it('reads PDF text per page with page numbers and title', async () => {
    const pdf = await extractPdfText(await readFile(path.join(dir, 'shards.pdf')));
    expect(pdf.title).toBe('Converter Guide');
    expect(pdf.pages).toHaveLength(2);
    expect(pdf.pages[1]).toContain('creates shards of size 4 MB by default');
    const doc = await pdfLoad('shards.pdf', await readFile(path.join(dir, 'shards.pdf')));
    const chunks = chunkDocument(doc);
    expect(chunks.map((c) => c.metadata.page)).toEqual([1, 2]);
  });

  it('reports a PDF without a text layer instead of indexing it empty', async () => {
    const err = await pdfLoad('scan.pdf', makeImageOnlyPdf(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrpError);
    expect(err).toMatchObject({ code: 'unsupported-format', details: { file: 'scan.pdf', pages: 3 } });
    expect((err as Error).message).toMatch(/no text layer on any of its 3 page.*OCR/);
  });

  it('rejects corrupt PDFs with corrupt-file naming the file; an HTML page is named as such', async () => {
    await expect(extractPdfText(new TextEncoder().encode('not a pdf'), 'x.pdf')).rejects.toMatchObject({
      code: 'corrupt-file',
      message: expect.stringContaining('x.pdf'),
    });
    await expect(
      extractPdfText(new TextEncoder().encode('<!doctype html><html><body>Login</body></html>'), 'p.pdf'),
    ).rejects.toThrow(/HTML page/);
    await expect(extractPdfText(makePdf([['hello']]).subarray(0, 60), 'cut.pdf')).rejects.toBeInstanceOf(
      CrpError,
    );
  });

  it('lays out page lines into headings, paragraphs, list items and code; drops running headers', () => {
    const line = (text: string, y: number, height = 10, mono = false): PdfLine => ({
      text,
      x: 50,
      y,
      height,
      mono,
    });
    const page = (n: number): PdfLine[] => [
      line(`Guide for packagers ${n} / 63`, 820, 8),
      line(n === 1 ? 'Restoring files' : `Section ${n}`, 760, 14),
      line('If you deleted a template file, call dh_make with the op-', 730),
      line('tion --addmissing again.', 718),
      line('• first point', 694),
      line('dh_make --addmissing', 670, 10, true),
      line('debuild -us -uc', 658, 10, true),
      line(`Body text about ${['alpha', 'beta', 'gamma'][n - 1]}.`, 634),
      line(`Closing remark on ${['rules', 'composites', 'canonizers'][n - 1]}.`, 622),
    ];
    const pages = [page(1), page(2), page(3)];
    const drop = runningLines(pages);
    expect([...drop]).toEqual(['Guide for packagers # / #']);
    expect(pdfPageBlocks(pages[0]!, drop)).toEqual([
      { kind: 'heading', text: 'Restoring files' },
      {
        kind: 'paragraph',
        text: 'If you deleted a template file, call dh_make with the option --addmissing again.',
      },
      { kind: 'list-item', text: 'first point' },
      { kind: 'code', text: 'dh_make --addmissing\ndebuild -us -uc' },
      { kind: 'paragraph', text: 'Body text about alpha. Closing remark on rules.' },
    ]);
  });

  it('ends a block where a PDF line ends with room for the next word (bullets drawn as graphics)', () => {
    // 5 units a character from x = 50: a line of 90 characters ends at 500, the column's end
    const lines = (...texts: string[]): PdfLine[] =>
      texts.map((text, i) => ({
        text,
        x: 50,
        right: 50 + 5 * text.length,
        y: 700 - 12 * i,
        height: 10,
        mono: false,
      }));
    const full = 'x'.repeat(90);
    const list = lines(
      'The library has these composites:',
      `EpsilonPlus, which uses ZPlus for convolutional layers and Epsilon for densely connected ${'w'.repeat(1)}`,
      'linear layers', // the item's wrapped end: "EpsilonAlpha2Beta1," would have fit after it
      `EpsilonAlpha2Beta1, which uses AlphaBeta for convolutional and Epsilon for dense ${'w'.repeat(9)}`,
      'layers',
      'Flat is used for the first layer by both.',
      full,
    );
    expect(pdfPageBlocks(list).map((b) => `${b.kind}: ${b.text}`)).toEqual([
      'paragraph: The library has these composites:',
      'list-item: EpsilonPlus, which uses ZPlus for convolutional layers and Epsilon for densely connected w linear layers',
      'list-item: EpsilonAlpha2Beta1, which uses AlphaBeta for convolutional and Epsilon for dense wwwwwwwww layers',
      // a sentence's end is left to the sentence splitter
      `paragraph: Flat is used for the first layer by both. ${full}`,
    ]);
    const prose = lines(
      full,
      'wrapped because Relevanzausbreitungsverfahren did not fit on the line', // ends at 395
      'Relevanzausbreitungsverfahren continues the list:', // its first word needs 150, 105 were left
      'Depends', // a label: kept with what it names
      'The package is installed only when these are installed.',
      `See https://example.org/${'a'.repeat(100)}`, // runs into the margin (ends at 675)
      full,
      full,
      full,
      `${'y'.repeat(80)} and`, // ends at 470: "Python" needs 45 (7 characters and a glyph's height), 30 are left
      'Python ends it.',
    );
    expect(pdfPageBlocks(prose).map((b) => `${b.kind}: ${b.text}`)).toEqual([
      `paragraph: ${full} wrapped because Relevanzausbreitungsverfahren did not fit on the line Relevanzausbreitungsverfahren continues the list:`,
      `paragraph: Depends The package is installed only when these are installed. See https://example.org/${'a'.repeat(100)} ${full} ${full} ${full} ${'y'.repeat(80)} and Python ends it.`,
    ]);
    // without widths (another PDF reader), evenly spaced lines are one paragraph as before
    expect(pdfPageBlocks(list.map(({ right: _right, ...l }) => l))).toHaveLength(1);
  });

  it('leaves out footnote markers set raised and smaller after a word, not powers or numbers', () => {
    // a 10-unit body font; a marker is a 7-unit item whose baseline sits 3 units higher
    const item = (str: string, x: number, raised = false, hasEOL = false): PdfTextItem => ({
      str,
      x,
      y: raised ? 503 : 500,
      height: raised ? 7 : 10,
      width: 5 * str.length,
      hasEOL,
    });
    const lines = pdfLines([
      item('The method of Smith et al', 50),
      item('4', 175, true),
      item(' satisfies two axioms (2017)', 180),
      item('12', 320, true),
      item('.', 330, false, true),
      item('Vectors in ℝ', 50), // a power of a one-letter name
      item('3', 110, true),
      item(' of size grid_size', 115), // a power of a variable
      item('2', 205, true),
      item(' and Python 3.11 with resnet50 on page 52', 210, false, true), // same size, same baseline
      item('Wrong order', 50),
      item('5', 105, false), // as large as the word: no marker by size
      item(' here.', 110, false, true),
    ]);
    expect(lines.map((l) => l.text)).toEqual([
      'The method of Smith et al satisfies two axioms (2017).',
      'Vectors in ℝ3 of size grid_size2 and Python 3.11 with resnet50 on page 52',
      'Wrong order5 here.',
    ]);
  });

  it('takes the numbers of the footnotes at a page foot out of the text that points at them', () => {
    const line = (text: string, y: number, height = 10): PdfLine => ({ text, x: 50, y, height, mono: false });
    const page = [
      line('The archive is built by the tool.3 It reads the options of', 700),
      line('section 2 of the manual, see Tabelle 2 and libfoo.so.1 for the', 688),
      line('version 3.11 that was released. 4', 676),
      line('A new paragraph names 7 things.7', 650),
      line('3Older archives use another format.', 120, 8),
      line('⁴See the manual for the details of', 110, 8),
      line('the format.', 101, 8),
    ];
    expect(pdfPageBlocks(page).map((b) => `${b.kind}: ${b.text}`)).toEqual([
      // "things.7" stays: no footnote 7 on the page
      'paragraph: The archive is built by the tool. It reads the options of section 2 of the manual, see Tabelle 2 and libfoo.so.1 for the version 3.11 that was released.',
      'paragraph: A new paragraph names 7 things.7',
      // the notes, without their numbers, as the layout joins them (close lines in one font): a note
      'note: Older archives use another format. See the manual for the details of the format.',
    ]);
    // a note set nearly as large as the prose, as close as its lines: still a block of its own
    const close = [line('The tool writes the file.1', 700), line('1Only when asked to.', 688, 9)];
    expect(pdfPageBlocks(close).map((b) => `${b.kind}: ${b.text}`)).toEqual([
      'paragraph: The tool writes the file.',
      'note: Only when asked to.',
    ]);
    // small lines at the foot that open with no number are no footnotes: nothing is taken out, no note
    const caption = [line('Run the tool.3 Then stop.', 700), line('Figure notes 3 and 4.', 110, 8)];
    expect(pdfPageBlocks(caption).map((b) => `${b.kind}: ${b.text}`)).toEqual([
      'paragraph: Run the tool.3 Then stop.',
      'paragraph: Figure notes 3 and 4.',
    ]);
    // notes the layout parts (a gap between two of them): every block from the first note on is a note
    const parted = [
      ...['The tool writes the file.1 It stops', 'when it', 'has written', 'the last', 'line.2'].map((t, i) =>
        line(t, 700 - 12 * i),
      ),
      line('1Only when asked to.', 120, 8),
      line('2Or when the disk is full.', 100, 8),
    ];
    expect(pdfPageBlocks(parted).map((b) => `${b.kind}: ${b.text}`)).toEqual([
      'paragraph: The tool writes the file. It stops when it has written the last line.',
      'note: Only when asked to.',
      'note: Or when the disk is full.',
    ]);
  });

  it('de-hyphenates words broken at line ends, keeps compounds', () => {
    expect(dehyphenate('wie-\nderherstellen')).toBe('wiederherstellen');
    expect(dehyphenate('Debian-\nPaket')).toBe('Debian-Paket');
  });

  it('keeps the hyphen of a compound split at a line end when only its parts are words', () => {
    // a hand-made lexicon: joined words that are words, and English words that may be compound parts
    const words = new Set(['wiederherstellen', 'rule', 'based', 'data', 'set', 'attribution', 'relevanz']);
    const parts = new Set(['rule', 'based', 'data', 'set', 'attribution', 'wie']);
    const lexicon = { isWord: (w: string) => words.has(w), isCompoundPart: (w: string) => parts.has(w) };
    expect(dehyphenate('a rule-\nbased method', lexicon)).toBe('a rule-based method');
    expect(dehyphenate('the data-\nset', lexicon)).toBe('the data-set');
    // the joined word is a word: joined, even though "wie" is a part
    expect(dehyphenate('wie-\nderherstellen', lexicon)).toBe('wiederherstellen');
    // a part that is no word ("attri"): a word split by syllables, joined
    expect(dehyphenate('attri-\nbution', lexicon)).toBe('attribution');
    // German compounds are written closed: "Relevanz" is no English compound part
    expect(dehyphenate('Relevanz-\nausbreitung', lexicon)).toBe('Relevanzausbreitung');
    expect(dehyphenate('Debian-\nPaket', lexicon)).toBe('Debian-Paket');
    // the whole words around the break are looked up, and case is kept
    expect(dehyphenate('Rule-\nbased and Data-\n  set', lexicon)).toBe('Rule-based and Data-set');
  });

  it('asks the dictionary which split words are words', async () => {
    const translator = await loadDefaultTranslator();
    expect(translator, '@crp/rag-dictionary-de-en is installed in the workspace').toBeDefined();
    const lexicon = hyphenLexicon(translator!);
    expect(dehyphenate('rule-\nbased', lexicon)).toBe('rule-based');
    expect(dehyphenate('wie-\nderherstellen', lexicon)).toBe('wiederherstellen');
    expect(dehyphenate('Debian-\nPaket', lexicon)).toBe('Debian-Paket');
    expect(dehyphenate('con-\nsider some-\nthing', lexicon)).toBe('consider something');
    expect(dehyphenate('Netz-\nwerk', lexicon)).toBe('Netzwerk');
  });
});

describe('files', () => {
  it('scans supported files recursively, sorted, with / separators', async () => {
    await writeFile(path.join(dir, 'ignored.bin'), 'x');
    expect(await scanFolder(dir)).toEqual(['lrp.md', 'notes.txt', 'shards.pdf', 'sub/vektor.md']);
  });

  it('a missing folder is a not-found error that names it', async () => {
    await expect(scanFolder(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'not-found' });
  });

  it('unknown extensions and binary text are errors that say what is valid', async () => {
    await expect(loadDocument('a.docx', new Uint8Array([1]))).rejects.toMatchObject({
      code: 'unsupported-format',
      message: expect.stringContaining('.pdf, .md'),
    });
    await expect(loadDocument('a.md', new Uint8Array([0x61, 0, 0x62]))).rejects.toMatchObject({
      code: 'corrupt-file',
    });
    await expect(loadDocument('a.pdf', makePdf([['x']]))).rejects.toThrow(/PDF extractor/);
  });
});
