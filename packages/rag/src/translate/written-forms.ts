import { CrpError } from '@crp/common';

/** First line of a written-forms file: which dictionary it belongs to, and where its lines are. */
export interface WrittenFormsHeader {
  readonly format: string;
  /** Number of pairs of the dictionary (one line of forms each, in the dictionary's order). */
  readonly lines: number;
  /** Length of the dictionary's pairs string (UTF-16 code units), as the translator's fingerprint counts it. */
  readonly pairsLength: number;
  /** Lines between two checkpoints. */
  readonly step: number;
  /** Byte offset (UTF-8, from the line after the header) of line 0, `step`, `2 * step`, ... */
  readonly offsets: readonly number[];
}

/** The format written; version 1 (no shares: each written pair counts as all of its pair) is still read. */
const FORMAT = 'crp-written-forms 2';
const FORMATS = new Set(['crp-written-forms 1', FORMAT]);
const NEWLINE = 10;

/** Random access to a file's bytes (`@crp/rag/node` reads ranges of `forms.txt` this way, not the whole file). */
export interface ByteSource {
  readonly byteLength: number;
  /** `length` bytes from `offset` (fewer at the end). */
  read(offset: number, length: number): Uint8Array;
}

/**
 * The words of a dictionary's pairs as the dictionary writes them ("Datenbank", "Verknüpfung", "database"),
 * where the pairs hold only stems: `forms.txt` of `@crp/rag-dictionary-de-en`, one line per pair in the order of
 * `dictionary.json`, "German edit TAB English edit" for each written pair (more than one where several stem
 * alike: betrachten/consider, beträchtlich/considerable, then each followed by its share of the pair's weight in
 * percent: "TAB 89" and "TAB 11", so a gloss weighs a sense by the written pairs of the word it glosses, not by
 * all that stem alike), each edit turning the pair's stem into its written form:
 * "" the stem itself, "^" the first letter capitalised, "N+tail" the last N letters dropped (N omitted when 0) and
 * tail appended, "=form" the form whole ("databas" with "+e" is "database", "verknupf" with "^3+üpfung" is
 * "Verknüpfung"). A JSON header line gives the number of pairs and the pairs string's length, so forms of
 * another dictionary are refused, and the byte offsets of every `step`-th line, so a line is found by reading
 * the block of `step` lines that holds it: of the 4 MB only the header and the blocks asked for are read.
 */
export class WrittenForms {
  readonly header: WrittenFormsHeader;
  readonly #source: ByteSource;
  readonly #body: number;
  readonly #decoder = new TextDecoder();
  readonly #blocks = new Map<number, Uint8Array>();

  private constructor(source: ByteSource, header: WrittenFormsHeader, body: number) {
    this.#source = source;
    this.header = header;
    this.#body = body;
  }

  /**
   * Reads the header of a written-forms file (its bytes, its text, or a {@link ByteSource}); throws
   * `corrupt-file` when the header is wrong.
   */
  static parse(file: Uint8Array | string | ByteSource): WrittenForms {
    const source = byteSource(typeof file === 'string' ? new TextEncoder().encode(file) : file);
    // the header line: read on until its newline
    let first = -1;
    let head: Uint8Array = new Uint8Array(0);
    for (let length = 1 << 16; first < 0 && head.length < source.byteLength; length *= 4) {
      head = source.read(0, Math.min(length, source.byteLength));
      first = head.indexOf(NEWLINE);
    }
    const line = new TextDecoder().decode(head.subarray(0, first < 0 ? head.length : first));
    let header: WrittenFormsHeader | undefined;
    try {
      header = JSON.parse(line) as WrittenFormsHeader;
    } catch {
      header = undefined;
    }
    const step = header?.step ?? 0;
    if (
      !header ||
      !FORMATS.has(header.format) ||
      !Number.isInteger(header.lines) ||
      !Number.isInteger(header.pairsLength) ||
      !Number.isInteger(step) ||
      step < 1 ||
      !Array.isArray(header.offsets) ||
      header.offsets.length !== Math.ceil(header.lines / step) ||
      first < 0
    )
      throw new CrpError(
        'corrupt-file',
        `The written forms need a header line {"format":"${FORMAT}","lines":N,"pairsLength":N,"step":N,"offsets":[one per step lines]}; got ${line.slice(0, 120)}.`,
      );
    // a file cut short (an interrupted copy or build) is refused here, as a whole, rather than at the first
    // gloss that reads its missing blocks: the checkpoints ascend and lie inside it, and it ends with a newline
    const body = first + 1;
    const { offsets } = header;
    const inside = offsets.every(
      (o, i) =>
        Number.isInteger(o) && o >= (i === 0 ? 0 : offsets[i - 1]! + 1) && body + o < source.byteLength,
    );
    if (!inside || (header.lines > 0 && source.read(source.byteLength - 1, 1)[0] !== NEWLINE))
      throw new CrpError(
        'corrupt-file',
        `The written forms are cut short or their checkpoints lie outside them (${source.byteLength} bytes for ${header.lines} lines); rebuild them (build-dictionary.mjs).`,
      );
    return new WrittenForms(source, header, body);
  }

  /**
   * The written pairs [German, English] of the pair numbered `pair` (0-based, in the dictionary's order) whose
   * stems are `de` and `en`, each with its share of the pair's weight (0 to 1; 1 for a pair written one way, and
   * for each of a version 1 file, which has no shares):
   * heaviest first, more than one where several written pairs stem alike.
   */
  forms(pair: number, de: string, en: string): (readonly [string, string, number])[] {
    const { lines, step } = this.header;
    if (!Number.isInteger(pair) || pair < 0 || pair >= lines)
      throw new CrpError('invalid-argument', `No pair ${pair} in the written forms; they have ${lines}.`);
    const block = this.#block(Math.floor(pair / step));
    let at = 0;
    for (let skip = pair % step; skip > 0; skip--) {
      const end = block.indexOf(NEWLINE, at);
      if (end < 0)
        throw new CrpError('corrupt-file', 'The written forms do not match their header; rebuild them.');
      at = end + 1;
    }
    let end = block.indexOf(NEWLINE, at);
    if (end < 0) end = block.length;
    const edits = this.#decoder.decode(block.subarray(at, end)).split('\t');
    const out: (readonly [string, string, number])[] = [];
    // a line of one written pair has no share (it is all of the pair); version 1 has none at all
    const shares = edits.length > 2 && this.header.format === FORMAT;
    const width = shares ? 3 : 2;
    // a field missing or a share that is no percent would shift every pair after it into the wrong field
    if (edits.length % width !== 0 && !(edits.length === 1 && edits[0] === ''))
      throw new CrpError(
        'corrupt-file',
        `Line ${pair + 1} of the written forms has ${edits.length} fields; ${shares ? 'each written pair needs 3 (German, English, share)' : 'each written pair needs 2 (German, English)'}. Rebuild them (build-dictionary.mjs).`,
      );
    for (let i = 0; i < edits.length - 1; i += width) {
      const percent = shares ? edits[i + 2]! : '100';
      if (!/^\d{1,3}$/.test(percent) || Number(percent) > 100)
        throw new CrpError(
          'corrupt-file',
          `Line ${pair + 1} of the written forms has the share "${percent.slice(0, 20)}"; a share is a whole percent from 0 to 100. Rebuild them (build-dictionary.mjs).`,
        );
      out.push([applyFormEdit(de, edits[i]!), applyFormEdit(en, edits[i + 1]!), Number(percent) / 100]);
    }
    return out;
  }

  /** The bytes of the `k`-th block of `step` lines (kept: a gloss asks for few). */
  #block(k: number): Uint8Array {
    let block = this.#blocks.get(k);
    if (!block) {
      const { offsets } = this.header;
      const from = this.#body + offsets[k]!;
      const to = k + 1 < offsets.length ? this.#body + offsets[k + 1]! : this.#source.byteLength;
      block =
        to >= from && to <= this.#source.byteLength ? this.#source.read(from, to - from) : new Uint8Array(0);
      // a block is whole lines: it ends with a newline and (but the first) starts after one
      const before = from > this.#body ? this.#source.read(from - 1, 1)[0] : NEWLINE;
      if (block.length === 0 || block[block.length - 1] !== NEWLINE || before !== NEWLINE)
        throw new CrpError('corrupt-file', 'The written forms do not match their header; rebuild them.');
      if (this.#blocks.size >= 4096) this.#blocks.clear();
      this.#blocks.set(k, block);
    }
    return block;
  }
}

function byteSource(file: Uint8Array | ByteSource): ByteSource {
  if (!(file instanceof Uint8Array)) return file;
  return {
    byteLength: file.byteLength,
    read: (offset, length) => file.subarray(offset, offset + length),
  };
}

/**
 * A written-forms file from its lines (one per pair, in the dictionary's order), with the header that
 * {@link WrittenForms.parse} reads; `build-dictionary.mjs` of `@crp/rag-dictionary-de-en` writes forms.txt with it.
 */
export function formatWrittenForms(lines: readonly string[], pairsLength: number, step = 64): string {
  const offsets: number[] = [];
  const encoder = new TextEncoder();
  let at = 0;
  lines.forEach((line, i) => {
    if (i % step === 0) offsets.push(at);
    at += encoder.encode(line).byteLength + 1;
  });
  const header = { format: FORMAT, lines: lines.length, pairsLength, step, offsets };
  return `${JSON.stringify(header)}\n${lines.map((l) => `${l}\n`).join('')}`;
}

/** A stem turned into its written form by an edit of a written-forms file (see {@link WrittenForms}). */
export function applyFormEdit(stem: string, edit: string): string {
  if (edit.startsWith('=')) return edit.slice(1);
  const cap = edit.startsWith('^');
  const rest = cap ? edit.slice(1) : edit;
  const plus = rest.indexOf('+');
  const word =
    plus < 0 ? stem : stem.slice(0, stem.length - Number(rest.slice(0, plus) || 0)) + rest.slice(plus + 1);
  return cap && word ? word[0]!.toUpperCase() + word.slice(1) : word;
}
