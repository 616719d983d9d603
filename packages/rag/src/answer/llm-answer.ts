import { LANGUAGE_NAMES } from '../text/language.js';
import { splitSentences } from '../text/sentences.js';
import type { Language } from '../types.js';
import type { ComposedAnswer } from './extractive-answer.js';
import type { Source } from './source.js';

/** Writes an answer from numbered sources; implementations call a language model. */
export interface AnswerGenerator {
  /** Shown as the answer's `mode` (e.g. `groq:llama-3.1-8b-instant`). */
  readonly name: string;
  /** The answer text, citing sources as `[n]`. `language` is the question's. */
  generate(question: string, sources: readonly Source[], language?: Language): Promise<string>;
  /** The same answer as it is written, piece by piece (for streaming output); optional. */
  stream?(question: string, sources: readonly Source[], language?: Language): AsyncIterable<string>;
}

/** The instructions every generator sends first. */
export const SYSTEM_PROMPT =
  'You answer questions using only the numbered sources you are given. After every sentence, cite the ' +
  'sources it relies on as [n]. Do not add facts, names or numbers the sources do not contain. If the ' +
  'sources do not contain the answer, say so in one sentence. Answer in the language of the question, ' +
  'even when the sources are in another language. Be brief: at most four sentences.';

/**
 * The user message: the numbered sources as clean text (code blocks fenced as code, footnotes marked
 * `[Footnote: ...]`), each with its citation,
 * section and language, then the question and the language to answer in.
 */
export function buildPrompt(question: string, sources: readonly Source[], language?: Language): string {
  const blocks = sources.map((s) => {
    const where = s.section
      ? s.section.startsWith(s.title)
        ? s.section
        : `${s.title} > ${s.section}`
      : s.title;
    const head = `[${s.n}] ${s.citation} ${where} (${LANGUAGE_NAMES[s.language]})`;
    let body = s.text;
    if (s.blocks?.some((b) => b.kind === 'code' || b.kind === 'note')) {
      body = '';
      let at = 0;
      for (const b of s.blocks) {
        body += s.text.slice(at, b.start);
        const part = s.text.slice(b.start, b.end);
        // a footnote marked as one: the model must not take a cited title or an aside for what the text says
        body +=
          b.kind === 'code' ? `\`\`\`\n${part}\n\`\`\`` : b.kind === 'note' ? `[Footnote: ${part}]` : part;
        at = b.end;
      }
      body += s.text.slice(at);
    }
    return `${head}\n${body}`;
  });
  const lang = language ? `\n\nAnswer in ${LANGUAGE_NAMES[language]}.` : '';
  return `Sources:\n\n${blocks.join('\n\n')}\n\nQuestion: ${question}${lang}`;
}

/** Replaces every occurrence of each secret in a text by `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}

/**
 * Splits a generated answer into sentences with the `[n]` sources each cites, and rewrites `[n]` as the
 * source's `[file, p. N]` citation. Citations of unknown sources are dropped.
 */
export function parseGeneratedAnswer(text: string, sources: readonly Source[]): ComposedAnswer {
  // "Sentence. [1]" -> "Sentence [1]." so the mark stays with its sentence
  const moved = text.trim().replace(/([.!?])\s*((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)/g, ' $2$1 ');
  const sentences = splitSentences(moved).map((s) => {
    const citations: number[] = [];
    const rewritten = s.text.replace(/\[(\d+(?:\s*,\s*\d+)*)\]/g, (_m, list: string) => {
      const marks = list
        .split(',')
        .map((x) => Number(x.trim()))
        .filter((n) => n >= 1 && n <= sources.length);
      citations.push(...marks);
      return marks.map((n) => sources[n - 1]!.citation).join(' ');
    });
    return {
      text: rewritten.replace(/\s+([.!?])/g, '$1').trim(),
      kind: 'prose' as const,
      citations: [...new Set(citations)],
    };
  });
  return { text: sentences.map((s) => s.text).join(' '), sentences };
}
