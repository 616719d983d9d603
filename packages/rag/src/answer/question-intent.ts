import { stemOf } from '../text/analyzer.js';

/**
 * What a question asks for: a `definition` ("What is X?"), a `comparison` of two named things ("How does X
 * differ from Y?", "When should I use X instead of Y?"), a `procedure` ("How do I ...?"), a `reason`
 * ("Why ...?"), a `list` ("Which ...?"), a `number` ("How many ...?"), or `other`.
 */
export type QuestionKind = 'definition' | 'comparison' | 'procedure' | 'reason' | 'list' | 'number' | 'other';

/** The kind of a question and the words of its subject (the X of "What is X?"). */
export interface QuestionIntent {
  readonly kind: QuestionKind;
  /** Lower-case words of the thing to define, for `definition`; empty otherwise. */
  readonly subject: readonly string[];
  /**
   * The question asks when or why to take one named thing rather than another ("When should I use X instead of
   * Y?", "Why X rather than Y?"): a condition, a preference or a reason answers it, not a list naming both.
   */
  readonly choice?: boolean;
  /**
   * The question asks yes or no ("Can I ...?", "Kann man ...?"): a sentence that says what cannot or only can be
   * done, or why, answers it.
   */
  readonly polar?: boolean;
  /**
   * The kind was read from the question's opening word alone (a yes/no question as a `reason`, a "how" question
   * as a `procedure`, "Wovon ...?" as a `reason`, "Woraus ...?" or "What happens to X ...?" as a `definition`), no
   * word of the relation in it: a sentence holding the relation is preferred, one without it
   * is not held back.
   */
  readonly guessed?: boolean;
  /**
   * A definition asked as what the subject is for ("Wozu dient X?", "Wofür ist X gut?", "What is X used for?"):
   * a sentence saying its purpose ("um ... zu", "dient dazu", "to ...", "so that") answers it as its definition does.
   */
  readonly purpose?: boolean;
  /**
   * A reason asked under a condition ("Why can X fail when the model is not robust?", "Worauf deutet es hin, wenn
   * ...?"): a sentence opening on a conditional clause ("If the model is not robust, ...") states what follows
   * under it, which answers the question as a cause does.
   */
  readonly conditional?: boolean;
  /**
   * Lower-case words that frame what is asked rather than name what it is about ("dienen" of "Wozu dienen X?",
   * "used" of "What is X used for?"): no sentence is chosen for holding them ("Chatbot-Dienste" for "dienen").
   */
  readonly frame?: readonly string[];
}

// German "what does X do": "Was berechnet X?", "Was gibt X zurück?" (not "was macht man", "was gibt es": no X
// acts there); the subject runs to a place or tool ("in Captum") or the particle at the end.
const GERMAN_DOES =
  /(?:^|[,:]\s*)was\s+(?:berechne[nt]|liefer[nt]|leiste[nt]|misst|messen|zeig[et]n?|prüf[et]n?|speicher[nt]|enthält|enthalten|erzeug[et]n?|bewirk[et]n?|tu[nt]|gib[t]|geben|beschreib[et]n?|mach[et]n?)\s+(?!(?:ich|man|wir|sie|du|es)\b)(?:(?:ein|eine|einen|der|die|das|den)\s+)?(.+?)(?:\s+(?:in|im|bei|für|laut|zurück|aus|an|dabei|genau)\b.*)?\s*\??\s*$/i;

// First match wins: a comparison is often phrased as "how" or "when", a number as "how".
const KINDS: readonly [QuestionKind, RegExp][] = [
  [
    'comparison',
    /\b(differ\w*|difference|compared?|comparison|versus|vs\.?|instead of|rather than|prefer\w*\s.+?\sover|unlike|better than|related to|relates? to|relationship between|unterschied\w*|unterscheid\w*|im vergleich|(?:an)?statt(?=\s+[^\s?.!,;:])|anders als|besser als|zusammenhang zwischen|hängt\s.+\smit\s.+\szusammen)\b/i,
  ],
  [
    'number',
    // ends where no letter follows: \b after "groß" would need one
    // a quantity by name, also at the end of a German compound ("Python-Version", "Wertebereich"), or a date
    /\b(how (many|much|long|large|big|often)|what( \w+){0,3} (size|number|version|percentage|range)|(?:until|since) when|wie (viele?|lange|groß|oft|hoch)|(?:bis|seit) wann|welche[nmrs]?\s+(?:[\p{L}]+-)?(?:größe|anzahl|version|wertebereich|bereich))(?![\p{L}\p{N}_])/iu,
  ],
  [
    'reason',
    /\b(why|for what reason|what for|warum|weshalb|wieso|wozu|wofür|aus welchem grund)(?![\p{L}])/iu,
  ],
  [
    'procedure',
    // an obligation of the asker ("What do I have to change?", "What must my site set up?", "Was kann man tun?")
    /\b(how (do|can|should|would|to)|what (do|should) i (do|change|set)|(?:i|we|you) (?:have|need) to|what must|which (setting|option|flag|step|command)|steps? to|wie (kann|können|muss|müssen|soll|lässt|macht)|was (kann|muss|soll) (ich|man))\b/i,
  ],
  // "which" of a relative clause ("an application in which ...") asks for nothing
  [
    'list',
    /\b((?<!\b(?:in|by|of|on|at|from|with|through|under) )which|what are the|what (?:do|does|would) (?:i|we|you|one|it) need|was (?:brauche|braucht|benötige|benötigt) (?:ich|man)|what (kinds?|types?|ways)|list|name the|welche[mnrs]?|was für|nenne)\b/i,
  ],
  [
    'definition',
    /(^|[,:]\s*)(what|who|was|wer)\s+(is|are|was|does .+ (mean|stand for)|ist|sind|bedeutet|bezeichnet|macht|versteht man unter)\b/i,
  ],
  // "What does X do / return / store?": what X does says what it is (not "what do I need")
  [
    'definition',
    /(^|[,:]\s*)what\s+(does|do)\s+(?!(i|we|you|one)\b)\S.*\s(do|mean|return|store|show|hold|contain|compute|produce|output|measure|use|check|calculate|evaluate|represent|describe|provide)\b/i,
  ],
  // the same in German, verb second ("Was berechnet Saliency?", "Was leistet das Modul?") and "Was versteht die
  // Lektion unter X?"
  ['definition', GERMAN_DOES],
  ['definition', /(^|[,:]\s*)was\s+versteh\w*\s.+\bunter\s/i],
];

// "What is (a|an|the) X?" / "Was ist (ein|eine|der|die|das) X?"
const SUBJECT =
  /(?:^|[,:]\s*)(?:what|who|was|wer)\s+(?:is|are|was|ist|sind|bedeutet|bezeichnet|macht)\s+(?:(?:a|an|the|ein|eine|einen|der|die|das|den)\s+)?(.+?)(?:\s+(?:in|im|bei|for|of|according to|laut)\s+.*)?\s*\??\s*$/i;

// "What does (a|the) X do?": X runs up to the verb, a trailing ", according to ..." left out
const ACTOR =
  /(?:^|[,:]\s*)what\s+(?:does|do)\s+(?:(?:a|an|the)\s+)?(.+?)\s+(?:do|mean|return|store|show|hold|contain|compute|produce|output|measure|use|check|calculate|evaluate|represent|describe|provide)\b/i;

const LINKING = new Set([
  'of',
  'the',
  'a',
  'an',
  'in',
  'for',
  'and',
  'der',
  'die',
  'das',
  'des',
  'von',
  'und',
]);

// The question word that opens a question decides over relation words later in it: "Why does X use Y instead of Z?"
// asks for a reason, not for a comparison.
const OPENS_REASON = /^(?:why|warum|weshalb|wieso|wozu|wofür)(?![\p{L}])/iu;

// "How does X work?", "Wie funktioniert X?": what X does and how, which its definition says.
const WORKS =
  /^(?:how\s+(?:does|do|did)\s+(?:(?:a|an|the)\s+)?(.+?)\s+work\b|wie\s+funktionier\w*\s+(?:(?:ein|eine|der|die|das)\s+)?(.+?)(?:\s+(?:in|im|bei|mit)\s+.*)?\s*\??\s*$)/iu;

// "What does the lesson mean by X?", "Was versteht die Lektion unter X?": X is the subject, not the lesson.
const MEANT =
  /\b(?:mean|meant|understand)\s+by\s+(?:(?:the|a|an)\s+)?(?:\w+\s+called\s+)?(.+?)\s*\??\s*$|\bunter\s+(?:(?:einem|einer|dem|der|den)\s+)?(.+?)\s*\??\s*$/i;

// A choice between named things: asked when or why (or what one should take), one thing preferred to another.
const ASKS_CHOICE =
  /^(?:when|why|in which cases?|wann|warum|wieso|weshalb|in welchen fällen)(?![\p{L}])|\b(?:should|would|sollte|sollten|soll)\b/iu;
// "over" only after "prefer" (a bare "over" is a place: "sum over the channels"); "statt" only before what it
// replaces (at the end it is the particle of "stattfinden": "Wann findet die Auswertung statt?").
const PREFERS =
  /\b(?:instead of|rather than|prefer\w*|better than|(?:an)?statt(?=\s+[^\s?.!,;:])|lieber|vorziehen|besser als)(?![\p{L}])/iu;

/** The kind of a question (see {@link QuestionKind}), for definitions its subject, and whether it asks for a choice. */
export function questionIntent(question: string): QuestionIntent {
  const q = question.trim();
  const works = WORKS.exec(q);
  if (works) return { kind: 'definition', subject: subjectWords(works[1] ?? works[2]!) };
  const purpose = PURPOSE.exec(q) ?? PURPOSE_FOR.exec(q) ?? PURPOSE_OF.exec(q);
  if (purpose) {
    const subject = subjectWords(purpose[1]!);
    return {
      kind: 'definition',
      subject,
      purpose: true,
      // a frame word that names the subject ("good" of "What is a good explainer used for?") still chooses
      frame: questionWords(q)
        .map((w) => w.toLowerCase())
        .filter((w) => PURPOSE_FRAME.test(w) && !subject.includes(w)),
    };
  }
  let kind = KINDS.find(([, re]) => re.test(q))?.[0];
  const guessed = kind === undefined && opening(q) !== 'other';
  kind ??= opening(q);
  if (OPENS_REASON.test(q)) kind = 'reason';
  // "Which X ...?" of one X asks what that one thing is, of several X for the list of them
  if (kind === 'list' && asksForOne(q)) kind = 'definition';
  else if (kind === 'other' && ASKS_FOR_SEVERAL.test(q)) kind = 'list';
  if ((kind === 'comparison' || kind === 'reason') && ASKS_CHOICE.test(q) && PREFERS.test(q))
    return { kind, subject: [], choice: true };
  const marks = {
    ...(kind === 'reason' && OPENS_YES_NO.test(q) ? { polar: true } : {}),
    ...(kind === 'reason' && !ASKS_PURPOSE.test(q) && !OPENS_YES_NO.test(q) && CONDITION.test(q)
      ? { conditional: true }
      : {}),
    ...(guessed ? { guessed: true } : {}),
  };
  if (kind !== 'definition') return { kind, subject: [], ...marks };
  const m = MEANT.exec(q) ?? SUBJECT.exec(q) ?? ACTOR.exec(q) ?? GERMAN_DOES.exec(q);
  return { kind, subject: m ? subjectWords(m[1] ?? m[2]!) : [], ...marks };
}

// A reason asked as what something is for ("Wofür braucht man X?", "What is X for?"): a purpose answers it, not
// the circumstance a conditional clause names.
const ASKS_PURPOSE = /\b(?:what for|wozu|wofür)(?![\p{L}])|^what\b.*\sfor\s*\??\s*$/iu;

// A question that opens with a verb asks yes or no ("Can I ...?", "Is X the same as ...?", "Kann man ...?"): what
// answers it is the reason for the yes or the no. One that opens with "how" and asks for no amount, comparison or
// working of a thing asks how something is done ("How does X handle ...?", "How is X built?").
const OPENS_YES_NO =
  /^(?:(?:[\p{L}-]+\s+){0,3}[,:]\s*)?(?:can|could|is|are|was|were|do|does|did|will|would|should|must|may|has|have|kann|können|ist|sind|war|gibt|muss|müssen|darf|dürfen|hat|haben|wird|werden|lässt|soll|sollte)\s/iu;
const OPENS_HOW = /^(?:how|wie)\s/i;
// German "what on / of / by" ("Wovon hängt X ab?", "Worauf kann es hindeuten?", "Wodurch entsteht X?"): what X
// depends on, points to or comes from, which a cause or a condition says.
const OPENS_WHEREON = /^(?:wovon|worauf|woran|wodurch|woher)(?![\p{L}])/iu;
// "Woraus besteht X?", "Womit beginnt X?", "Worin liegt X?", "What happens to X when ...?": what X is made of, opens
// with or does, which its definition says.
const OPENS_WHEREOF = /^(?:woraus|womit|worin|worüber|what happens (?:to|when|if|with))(?![\p{L}])/iu;

// "Wozu dient X?", "Wofür ist X zuständig?": what a thing is for, which its definition says (not "Wofür braucht
// man X?": there someone acts, for a reason).
const PURPOSE =
  /^(?:wozu|wofür)\s+(?:ist|sind|dient|dienen)\s+(?:(?:ein|eine|der|die|das|den)\s+)?(.+?)(?:\s+(?:in|im|bei|für|laut|gut|zuständig|nützlich|da)\b.*)?\s*\??\s*$/iu;
// "What is X (in Y) used for?", "What are X used for in Y?", "What are X good for?", "What is the purpose of X?"
const PURPOSE_FOR =
  /^what\s+(?:is|are)\s+(?:(?:a|an|the)\s+)?(.+?)(?:\s+(?:in|according to)\s+.+?)?\s+(?:used|good|useful|needed)\s+for(?:\s+(?:in|according to)\s+.+?)?\s*\??\s*$/i;
const PURPOSE_OF =
  /^what\s+(?:is|are)\s+the\s+purpose\s+of\s+(?:(?:a|an|the)\s+)?(.+?)(?:\s+(?:in|according to)\s+.*)?\s*\??\s*$/i;
// The words with which such a question asks what a thing is for: they frame it, no sentence is chosen for them.
const PURPOSE_FRAME = /^(?:dien(?:t|en)|gut|nützlich|zuständig|used|good|useful|needed|purpose)$/iu;
// "Which X does ...": X is the noun phrase before the verb, its head the last word (before "of": "kinds of harm");
// a plural head (English: ending in s) asks for several.
const WHICH_ONE =
  /^which\s+((?:[\w-]+\s+){0,3}?[\w-]+)\s+(?:do|does|did|is|was|has|can|could|will|would|should)\s/i;
// German: the singular nominative or neuter of "welch-" opens the question ("Welcher Retriever holt ...?")
const WELCHER_ONE = /^welch(?:er|es)\s/i;
// "What fields does X hold?": "what" before a plural noun and a verb asks which ones
const ASKS_FOR_SEVERAL =
  /^what\s+(?:[\w-]+\s+){0,2}?[\w-]+[^s\s]s\s+(?:do|does|did|are|can|will|would|should)\s/i;

/** Whether a "which" question asks for one thing rather than a list (see WHICH_ONE and WELCHER_ONE). */
function asksForOne(q: string): boolean {
  if (WELCHER_ONE.test(q)) return true;
  const phrase = WHICH_ONE.exec(q)?.[1]
    ?.split(/\s+of\s+/i)[0]
    ?.split(/\s+/);
  return phrase !== undefined && !/s$/i.test(phrase[phrase.length - 1]!);
}

/** The kind of a question that no relation word told: by the word that opens it, else `other`. */
function opening(q: string): QuestionKind {
  if (OPENS_YES_NO.test(q)) return 'reason';
  if (OPENS_WHEREON.test(q)) return 'reason';
  if (OPENS_WHEREOF.test(q)) return 'definition';
  if (OPENS_HOW.test(q)) return 'procedure';
  return 'other';
}

/** The lower-case words that name a subject, without the linking words of a long one. */
function subjectWords(phrase: string): string[] {
  return (
    phrase
      .toLowerCase()
      .split(/[^\p{L}\p{N}_-]+/u)
      // linking words of a long subject ("component of the dashboard") do not name it
      .filter((w) => w && !LINKING.has(w))
  );
}

// Nouns for a kind of document, singular and plural (German: and the genitive); the words joined to one
// ("Captum-Dokumentation") or before it in its noun phrase ("the RAG lesson", "the Generative AI for Beginners
// lesson") name the document the question asks about.
const DOCUMENT_KIND =
  /^(?:(?:lesson|tutorial|guide|paper|article|chapter|course|manual|handbook|readme|faq)s?|docs|documentation|lektion(?:en)?|dokumentation(?:en)?|dokus?|anleitung(?:en)?|kapitels?|artikels?|kurs(?:e|en|es)?|handbuch(?:e?s)?|handbücher[n]?|leitfadens?|leitfäden)$/i;
// English document nouns that are as often a verb or an adjective ("relevance scores guide pruning", "manual
// annotation"): a document only after a determiner or preposition that opens its noun phrase ("the RAG guide",
// and in a German question "dem Policy Manual").
const HOMOGRAPH = /^(?:guides?|manual)$/i;
const OPENS_NOUN =
  /^(?:the|a|an|this|that|these|those|our|your|its|their|in|on|of|to|from|by|according|which|what|der|die|das|den|dem|des|ein|eine|einer|einem|eines|im|laut|gemäß|unser\w*|welche\w*)$/i;
// Words that end the noun phrase before a document-kind noun, going back.
const PHRASE_START =
  /^(?:the|a|an|this|that|der|die|das|den|dem|des|ein|eine|einer|in|im|on|of|to|from|by|laut|gemäß|according|does|do|did|is|are|was|what|how|why|which|wie|was|warum|welche\w*|and|und|,)$/i;
// "according to the X", "laut der X": everything after it, to the next comma or the end, names the source.
const ACCORDING = /\b(?:according to|as described in|as explained in|laut|gemäß|nach angaben)\s+([^,?]+)/iu;

/** The words of a question as {@link documentNamingWords} reads them. */
function questionWords(question: string): string[] {
  return question.split(/[^\p{L}\p{N}_-]+/u).filter(Boolean);
}

/** Where the noun phrase ending at word `i` opens: the index of the word that ends it going back (-1: none). */
function phraseOpener(words: readonly string[], i: number): number {
  let j = i - 1;
  while (j >= 0 && i - j <= 5 && !PHRASE_START.test(words[j]!)) j--;
  return j;
}

/**
 * Whether word `i` of a question is a document-kind noun where it stands: not the adverb "of course", not the
 * "lesson(s) learned" of an experience, and a verb-or-adjective homograph ("guide", "manual") only in a noun
 * phrase a determiner or preposition opens. A hyphenated word ("Captum-Dokumentation") is one by any part.
 */
function isDocumentKind(words: readonly string[], i: number): boolean {
  const word = words[i]!;
  if (word.includes('-')) return word.split('-').some((p) => DOCUMENT_KIND.test(p));
  if (!DOCUMENT_KIND.test(word)) return false;
  const [before, after] = [words[i - 1]?.toLowerCase(), words[i + 1]?.toLowerCase()];
  if (/^courses?$/i.test(word) && before === 'of') return false;
  if (/^lessons?$/i.test(word) && (after === 'learned' || after === 'learnt')) return false;
  if (!HOMOGRAPH.test(word)) return true;
  // the opener, or a possessive inside the phrase ("does our RAG guide")
  return words.slice(Math.max(phraseOpener(words, i), 0), i).some((w) => OPENS_NOUN.test(w));
}

/**
 * The lower-case words with which a question names the document it asks about rather than what it asks: a
 * document-kind noun ("lesson", "Dokumentation"; {@link isDocumentKind}) with the words of its noun phrase before
 * it or joined to it by a hyphen ("the Generative AI for Beginners RAG lesson", "Captum-Dokumentation"), and
 * everything after "according to" / "laut". They choose the source (the retrieval has used them), not the sentence.
 */
export function documentNamingWords(question: string): Set<string> {
  const out = new Set<string>();
  const words = questionWords(question);
  words.forEach((word, i) => {
    if (!isDocumentKind(words, i)) return;
    for (const p of word.toLowerCase().split('-')) out.add(p);
    for (let j = i - 1; j > phraseOpener(words, i); j--)
      for (const p of words[j]!.toLowerCase().split('-')) out.add(p);
  });
  const according = ACCORDING.exec(question);
  if (according)
    for (const w of according[1]!.toLowerCase().split(/[^\p{L}\p{N}_]+/u))
      if (w && !LINKING.has(w)) out.add(w);
  return out;
}

/**
 * For each concept of a question, whether it names the document asked about (every word of it is among
 * {@link documentNamingWords}: "lesson" and "RAG" in "according to the RAG lesson", "Captum-Dokumentation").
 */
export function namingConcepts(question: string, concepts: readonly { readonly word: string }[]): boolean[] {
  const namedBy = documentNamingWords(question);
  if (namedBy.size === 0) return concepts.map(() => false);
  return concepts.map((c) =>
    c.word
      .toLowerCase()
      .split(/[\s-]+/)
      .every((w) => namedBy.has(w)),
  );
}

/**
 * For each concept of a question, whether it is a document-kind noun where it stands in the question
 * ({@link isDocumentKind}: "lesson", "Lektionen", "documentation", "article", not "of course" or "scores guide
 * pruning"): a word that says which document is meant and nothing about what is asked.
 */
export function documentKindConcepts(
  question: string,
  concepts: readonly { readonly word: string }[],
): boolean[] {
  const words = questionWords(question);
  const kinds = new Set(
    words.flatMap((w, i) => (isDocumentKind(words, i) ? w.toLowerCase().split('-') : [])),
  );
  return concepts.map((c) =>
    c.word
      .toLowerCase()
      .split(/[\s-]+/)
      .every((w) => kinds.has(w) && DOCUMENT_KIND.test(w)),
  );
}

// Words that carry the relation each kind asks for, in either language.
const RELATION: Readonly<Record<Exclude<QuestionKind, 'definition' | 'other'>, RegExp>> = {
  comparison:
    /\b(whereas|while|unlike|instead|in contrast|rather than|differs?|different|difference|compared|than|but|only|however|whilst|when|if|wenn|falls|während|im gegensatz|anders als|statt|anstatt|unterscheid\w*|unterschied\w*|hingegen|jedoch|aber|als)\b/i,
  // a quantity stands alone ("4 MB", "89 %", "2.15"), not inside a name ("group1-shard1of1.bin", "mixed4d")
  number:
    /(?<![\p{L}\d_.-])\d+(?:[.,]\d+)*(?![\p{L}_-])|\b(one|two|three|four|five|six|ten|hundred|thousand|number of|zwei|drei|vier|fünf|zehn|hundert|tausend|anzahl)\b/iu,
  // also purpose ("the purpose of X is to ...", "to verify ...", "dient dazu") and cause ("another factor is")
  reason:
    // "since" of time ("since 2019", "since version 2") and "da" as "there" or "then" ("da ist", "hier und da") say no
    // cause: "da" gives one only opening a clause, its verb at the end ("..., da LLMs ... haben"); opening the
    // sentence, a main clause follows after a comma ("Da X fehlt, bricht es ab"; not "Da hilft nur ein Neustart")
    /\b(because|since(?!\s+(?:\d|v\d|(?:then|when|last|early|(?:(?:the|its|their|our|this|that)\s+)?(?:beginning|start|release|introduction|version|january|february|march|april|may|june|july|august|september|october|november|december))\b))|due to|as a result|so that|in order to|therefore|thus|hence|reason|leads? to|leading to|allows?|otherwise|purpose|aim of|serves? to|to (?:verify|ensure|check|avoid|prevent|make sure)|factor|causes?d?|weil|denn|daher|deshalb|deswegen|damit|um .+ zu|grund|sonst|ermöglich\w*|zweck|dient|faktor|ursache)\b|(?:^[^\p{L}]*da\s+(?=[\s\S]*,)|[,;:(–]\s*da\s+)(?!(?:ist|sind|war|waren|gibt|gab|hat|haben|hatte|kann|können|muss|müssen|wird|werden|steht|stehen|liegt|liegen|bleibt|kommt|sieht|sehen|drüben|oben|unten|draußen)\b)/iu,
  // (a numbered step, "2. Run ...", opens with its number; steps in order say "first ... then"; a verb that is the
  // first word of a noun phrase is none: "Type checking is ...", "Start values are ...", "Follow-up work")
  procedure:
    /^\W*(?:(?:\d{1,2}[.)]|step \d{1,2}[.:]?)\s*)?(?:to [^,]{1,40},\s*)?(?:(?:then|now|first|next|finally|simply|dann|zuerst|anschließend|danach)\W+)?(?:simply\s+)?(?:(?:use|set|pass|call|run|install|add|change|enable|disable|reduce|increase|try|create|write|import|open|click|select|choose|specify|define|provide|remove|replace|configure|load|put|build|check|edit|update|save|copy|start|convert|follow|execute|apply|wrap|register|upload|download|type|enter|append|insert)(?!\s+(?!(?:it|this|that|everything|all)\b)[\p{L}-]+\s+(?:is|are|was|were)\b)(?![\p{L}\d_-])|make sure\b)|^\W*[\p{L}]+en\s+sie\b|\b(?:you (?:can|need|must|should|have to|may)|one can|to do (?:this|so)|by (?:setting|using|calling|passing|adding)|(?:is|are) (?:often |also )?possible to|lässt sich|lassen sich|sie (?:können|müssen|sollten)|man (?:kann|muss|sollte)|mit der option|mit dem befehl|indem)\b|(?:^|[,;:]\s*)(?:first|zuerst)\b[^.;]*\b(?:then|dann)\b/iu,
  // an enumeration: "A, B and C", "A; B; C", "... such as", "the following: ...", not a lone comma of a clause
  list: /:\s*\S|,[^,;.]+\b(?:and|or|und|oder)\b|[^,;]+[,;][^,;]+[,;]|\b(such as|including|include[sd]?|namely|e\.g\.|for example|the following|sowie|wie zum beispiel|z\.\s?b\.|beispielsweise|folgende\w*)\b/i,
};

// An enumeration stated outright: short items (up to 4 words) after a colon ("Models you can use are: word2vec,
// ada-002 von OpenAI, Azure ..."), a word
// that announces examples ("such as", "z. B."), or three items joined by "and"/"or". The list relation above also
// takes a colon after a label ("Abruf (Retrieval): Wenn ...") and a single "A, B and C" clause, which enumerate
// nothing as often as they list. (The first item's one character before its comma: a run there would be tried from
// every start, 24 us on a long sentence.)
const ENUMERATES =
  /:\s*(?:[^\s,;.:]+\s+){0,3}[^\s,;.:]+\s*[,;]\s*(?:[^\s,;.:]+\s+){0,3}[^\s,;.:]+\s*(?:[,;]|(?:and|or|und|oder)\s)|\b(?:such as|including|include[sd]?|namely|e\.g\.|for example|the following|wie zum beispiel|z\.\s?b\.|beispielsweise|folgende\w*)\b|[^,;],[^,;]+,[^,;.]+\b(?:and|or|und|oder)\b/i;

/**
 * How clearly a sentence that holds the asked-for relation ({@link holdsRelation}) states it, 0..1: 1 when outright,
 * 0 when only loosely. For a list question, a colon after a label or a lone "A, B and C" is loose, items after a
 * colon or words announcing examples are not (`ENUMERATES`); every other kind's relation counts as clear (a
 * definition's by the share of its subject's words and a question whose subject was not read: no held-out answer
 * gained, see the evaluation guide).
 */
export function relationClarity(sentence: string, intent: QuestionIntent): number {
  if (intent.kind === 'list' && !intent.choice) return ENUMERATES.test(sentence) ? 1 : 0;
  return 1;
}

// A copula or defining verb right after the subject: "X is ...", "X, a rule for ...", "X: Eine Person, ...".
const DEFINES =
  /^\s*(?:is|are|refers to|means|denotes|describes|represents|returns|computes|takes|defines|ist|sind|bezeichnet|bedeutet|beschreibt|[,:–-])/i;

// What decides a choice: a preference ("is better", "recommended", "suited"), a reason, and for a choice asked with
// "when" (a comparison) also a condition; a sentence that merely names both things holds none of it.
const PREFERENCE =
  /\b(?:better|best|preferable|preferred|recommended|suited|suitable|ideal|advantages?|drawbacks?|besser|empfohlen|geeignet|vorteil\w*|nachteil\w*)(?![\p{L}])/iu;
// What says yes or no: a negation, a limit ("only"), a need or a possibility
const POLAR =
  /\b(?:not|no|never|cannot|can't|only|must|required?|requires|supports?|possible|nicht|kein\w*|nie|nur|muss|müssen|erforderlich|unterstützt|möglich)(?![\p{L}])/iu;
const CONDITION = /\b(?:when|whenever|if|unless|in case|wenn|falls|sofern)(?![\p{L}])/iu;
// A conditional clause opening the sentence before its main clause ("If the model is not robust, explanations
// cannot ...", "Wenn Sie mit großen Dokumenten arbeiten, können Sie ..."): the circumstance that makes the main
// clause hold, which answers a reason asked under a condition (`QuestionIntent.conditional`). Only opening the
// sentence: a trailing "if" or "when" often only narrows what it says ("... is used when ..."). For every why
// question it cost held-out answers (see the evaluation guide, round ragwhy).
const CONDITIONAL_REASON = /^[^\p{L}]*(?:if|when|whenever|unless|wenn|falls|sofern)\s[^.;:?!]*?,\s*\S/iu;

/**
 * Whether a sentence holds the relation the question asks for: for a definition, the subject followed by a
 * defining verb ("A Node is ...", "ZBox, an LRP rule ..."); for the other kinds, a word that carries the
 * relation (because/weil for reasons, whereas/unlike for comparisons, an instruction for procedures, a
 * number, an enumeration). Always false for `other`.
 */
export function holdsRelation(sentence: string, intent: QuestionIntent): boolean {
  if (intent.kind === 'other') return false;
  if (intent.choice)
    return (
      PREFERENCE.test(sentence) ||
      RELATION.reason.test(sentence) ||
      (intent.kind === 'comparison' && CONDITION.test(sentence))
    );
  if (intent.polar && POLAR.test(sentence)) return true;
  if (intent.conditional && CONDITIONAL_REASON.test(sentence)) return true;
  if (intent.kind === 'definition') {
    // what a thing is for is said by its purpose as much as by its definition
    if (intent.purpose && RELATION.reason.test(sentence)) return true;
    if (intent.subject.length === 0)
      return /^[^,:]{2,60}\b(is|are|ist|sind)\s+(a|an|the|ein|eine)\b/i.test(sentence);
    // a word of the subject among the first words, followed by a defining verb
    const head = sentence.toLowerCase().slice(0, 80);
    // or the subject opens the sentence: "A response synthesizer generates ...", "SummaryIndexRetriever will fetch ..."
    const opening = /^\s*(?:(?:the|a|an|der|die|das|ein|eine)\s+)?[`'"*]*([\p{L}\p{N}_-]+)/u.exec(head)?.[1];
    // (a subject word may be a stem, "librari" of a translation: see isSubjectWord)
    if (opening !== undefined && intent.subject.some((w) => isSubjectWord(opening, w))) return true;
    return intent.subject.some((word) => {
      // the word itself, not part of a file or identifier name ("Paket.lintian-overrides" does not define lintian)
      const at = head.search(new RegExp(`(?<![\\p{L}\\d_.-])${escapeRegExp(word)}`, 'u'));
      if (at < 0) return false;
      const whole = /^[\p{L}\p{N}_-]+/u.exec(head.slice(at))![0];
      if (!isSubjectWord(whole, word)) return false;
      const after = head.slice(at).replace(/^[\p{L}\p{N}_`'"-]+[`'"]?/u, '');
      const m = DEFINES.exec(after);
      if (!m) return false;
      // an apposition ("ZBox, an LRP rule", "Sponsor: Eine Person") defines only at the start of the sentence, not
      // a list's last item ("including Feature Ablation and Occlusion, each perturbation ...")
      return !/^\s*[,:–-]/.test(m[0]) || head.slice(0, at).trim().split(/\s+/).filter(Boolean).length <= 2;
    });
  }
  return RELATION[intent.kind].test(sentence);
}

/**
 * Whether a sentence is about a definition's subject: the subject opens it, after an article ("LRP attributes ...",
 * "The LRP rules are ...", "Integrated gradients represents ..."), so what it says is said of the subject. A sentence
 * that names the subject in passing ("For LRP, the gradient of MaxPool ...", "With CRP, we ...") is not. Always
 * false for other kinds and for a definition without a subject.
 */
export function aboutSubject(sentence: string, intent: QuestionIntent): boolean {
  if (intent.kind !== 'definition' || intent.subject.length === 0 || intent.choice) return false;
  const opening = /^[^\p{L}\p{N}]*(?:(?:the|a|an|der|die|das|ein|eine)\s+)?[`'"*]*([\p{L}\p{N}_-]+)/u.exec(
    sentence.toLowerCase(),
  )?.[1];
  return opening !== undefined && intent.subject.some((w) => isSubjectWord(opening, w));
}

/**
 * Whether a word of a sentence is the subject word `s` of a definition question: the word itself, a name joined to
 * it ("captum-dokumentation", "Fehleranalyse-Komponente"), or an inflected form of it, which `s` may be the stem of (a translated subject is
 * stems: "librari" for "libraries"). A longer word that merely begins with it is another word ("treebanks" is not
 * "tree", "Regelwerk" not "Regel").
 */
function isSubjectWord(word: string, s: string): boolean {
  // a name joined by a hyphen is the subject by its first part ("Fehleranalyse-Komponente" for "Fehleranalyse")
  const first = word.includes('-') && !s.includes('-') ? word.slice(0, word.indexOf('-')) : word;
  if (first === s) return true;
  if (s.length < 4 || !first.startsWith(s)) return false;
  // a plural or case ending ("Regeln" of "Regel", "trees"), which the German stemmer does not always take off
  if (/^(?:s|es|e|n|en|er|ern|ns)$/.test(first.slice(s.length))) return true;
  return (['en', 'de'] as const).some((language) => {
    const stem = stemOf(first, language);
    return stem !== undefined && (stem === s || stem === stemOf(s, language));
  });
}

/**
 * A definition's subject as the question writes it ("iNNvestigate" for the subject word "innvestigate", "Grad-CAM"):
 * from its first word to its last; the lower-case words joined when the question does not hold them.
 */
export function subjectAsWritten(question: string, intent: QuestionIntent): string {
  const lower = question.toLowerCase();
  const at = (w: string, from: number) =>
    lower.slice(from).search(new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(w)}`, 'u'));
  const first = intent.subject[0];
  const last = intent.subject[intent.subject.length - 1];
  if (first === undefined || last === undefined) return '';
  const start = at(first, 0);
  if (start < 0) return intent.subject.join(' ');
  const lastAt = at(last, start);
  return lastAt < 0 ? intent.subject.join(' ') : question.slice(start, start + lastAt + last.length);
}

/**
 * Whether a definition question asks for what a name is and little more ("What is LRP?", "Was ist LRP?", "What
 * is a canonizer?"): a subject of at most three words and no search concept beyond them (`concepts`: how many the
 * search reads in the question; a hyphenated name may count as its parts). "What is the role of epsilon in LRP?"
 * asks more.
 */
export function asksForName(intent: QuestionIntent, concepts: number): boolean {
  if (intent.kind !== 'definition' || intent.choice || intent.subject.length === 0) return false;
  const parts = intent.subject.flatMap((w) => w.split('-')).filter(Boolean).length;
  return intent.subject.length <= 3 && concepts <= Math.max(intent.subject.length, parts);
}

// What makes a sentence define its subject rather than use it: a copula with an article or a word of naming after
// it ("X is a ...", "X are the ...", "X refers to", "X ist eine ..."), possibly after a comma-enclosed insertion
// ("ist, im Gegensatz zu Y, eine ...").
const DEFINING_PREDICATE =
  /^\s*(?:(?:is|are|was|ist|sind)\b\s*(?:(?:also|often|usually|simply|basically|essentially|generally|auch|eigentlich|im grunde)\s+)?(?:,[^,]{1,60},\s*)?(?:a|an|the|one|ein|eine|einer|der|die|das|kind of|type of|known as|called|defined as)\b|(?:refers? to|stands? for|means|denotes|bezeichnet|bedeutet|steht für)\b)/iu;
// An apposition at the start: "X, a rule for ...", "X – ein Werkzeug ...", "X: an LRP rule ...".
const DEFINING_APPOSITION = /^\s*[,:–-]\s*(?:a|an|the|ein|eine|einer|der|die|das)\s/iu;
// What a glossary entry says after its label: a verb in the third person ("computes", "randomises", "attributes").
const DEFINING_ENTRY = /^\p{Ll}{3,}s\s/u;
// A verb that introduces a new thing by name ("we developed X, a ...", "we propose X, a method ...").
const INTRODUCES =
  /(?<![\p{L}\p{N}_])(?:developed|develop|introduce[ds]?|present(?:ed|s)?|propose[ds]?|entwickelt(?:en)?)\s+/gu;
// Linking and naming words that may stand between an expanded name and what defines it ("is also known as X").
const NAMES_BEFORE =
  /(?:^|\b(?:is|are|ist|sind|called|known as|named|termed|heißt|genannt|nennt man))\s*(?:(?:also|auch|often|oft|commonly)\s+)?(?:(?:the|a|an|der|die|das)\s+)?$/iu;

/** The letters of an acronym (upper-case letters; digits and the rest left out): "BM25" -> "BM". */
function acronymLetters(token: string): string {
  return token.replace(/[^\p{Lu}]/gu, '');
}

/**
 * Whether `phrase`'s words spell `letters` by their initials (each hyphenated part counts, small parts such as
 * "wise" of "Layer-wise" or "with" of "Testing with Concept ..." may be skipped), from its first word to its last.
 */
function spells(phrase: readonly string[], letters: string): boolean {
  const parts = phrase.flatMap((w) => w.split('-')).filter(Boolean);
  if (parts.length < letters.length || parts.length > letters.length + 3) return false;
  const initial = (p: string) => p[0]!.toUpperCase();
  if (initial(parts[0]!) !== letters[0] || initial(parts[parts.length - 1]!) !== letters[letters.length - 1])
    return false;
  let k = 0;
  for (const p of parts) if (k < letters.length && initial(p) === letters[k]) k++;
  return k === letters.length;
}

/**
 * Where a sentence gives an acronym of the subject with its expansion ("Layer-wise Relevance Propagation (LRP)",
 * "Retrieval-Augmented Generation or RAG", "TCAV or Testing with Concept Activation Vectors", "LRP (Layer-wise
 * Relevance Propagation)"): the character span of the expanded name, or undefined.
 */
function expansionAt(sentence: string, word: string): { start: number; end: number } | undefined {
  const token = new RegExp(`(?<![\\p{L}\\d_.-])${escapeRegExp(word)}(?![\\p{L}\\d_])`, 'giu');
  for (const m of sentence.matchAll(token)) {
    const letters = acronymLetters(m[0]);
    // an acronym is written in capitals: two letters or more, all of its letters upper-case
    if (letters.length < 2 || /\p{Ll}/u.test(m[0])) continue;
    const at = m.index;
    const end = at + m[0].length;
    // the expansion before it: "Long Name (X)", "Long Name or X"
    const before = /(?<![\p{L}\p{N}_-])((?:[\p{L}][\p{L}-]*\s+){1,7})(?:\(\s*$|(?:or|oder)\s+$)/u.exec(
      sentence.slice(0, at),
    );
    if (before) {
      const words = before[1]!.trim().split(/\s+/);
      for (let i = 0; i < words.length; i++)
        if (spells(words.slice(i), letters)) {
          const start = before.index + before[1]!.split(/\s+/).slice(0, i).join(' ').length + (i > 0 ? 1 : 0);
          return { start, end: end + (sentence[end] === ')' ? 1 : 0) };
        }
    }
    // the expansion after it: "X (Long Name)", "X or Long Name"
    const after = /^\s*(?:\(\s*|(?:or|oder)\s+)((?:[\p{L}][\p{L}-]*\s*){1,7})/u.exec(sentence.slice(end));
    if (after) {
      const words = after[1]!.trim().split(/\s+/);
      for (let i = words.length; i > 0; i--)
        if (spells(words.slice(0, i), letters)) return { start: at, end: end + after[0].length };
    }
  }
  return undefined;
}

/**
 * Whether a sentence defines the subject of a definition question, more than {@link holdsRelation} asks: the
 * subject opens the sentence (after an article) and a copula with an article or a word of naming follows it, or an
 * apposition ("X is a ...", "X (long name) is the ...", "X, an LRP rule for ...", "X refers to ...", "X ist eine
 * ..."); or, for an acronym, the sentence gives its expansion as its subject or as what a copula or a naming verb
 * says ("Layer-wise Relevance Propagation (LRP) is ...", "This is known as Retrieval-Augmented Generation (RAG)",
 * "One use is Retrieval-Augmented Generation or RAG, in which ..."). A sentence that merely uses the name does
 * not ("For LRP, the gradient ..."). Always false for other kinds and for a definition without a subject.
 */
export function definesSubject(sentence: string, intent: QuestionIntent): boolean {
  if (intent.kind !== 'definition' || intent.subject.length === 0 || intent.choice) return false;
  const text = sentence.replace(/\s+/g, ' ').trim();
  const lower = text.toLowerCase();
  const subject = (w: string) => intent.subject.some((s) => isSubjectWord(w, s));
  // the subject's noun phrase at the start: an article, then subject words (the rest of a long subject's name may
  // follow: "Integrated Gradients", "Concept Relevance Propagation"), a parenthesis, ", or Y,"
  const opening = /^[^\p{L}\p{N}(]*(?:(?:the|a|an|der|die|das|ein|eine)\s+)?[`'"*]*([\p{L}\p{N}_-]+)/u.exec(
    lower,
  );
  if (opening && subject(opening[1]!)) {
    let rest = lower.slice(opening[0].length).replace(/^[`'"*]+/, '');
    for (let i = 0; i < 3; i++) {
      const more = /^\s+([\p{L}\p{N}_-]+)/u.exec(rest);
      if (!more || !subject(more[1]!)) break;
      rest = rest.slice(more[0].length);
    }
    rest = rest.replace(/^(?:\s*\([^)]{1,80}\)){1,2}/, '').replace(/^\s*,\s*(?:or|oder)\s[^,]{1,60},/, '');
    if (DEFINING_PREDICATE.test(rest) || DEFINING_APPOSITION.test(rest)) return true;
    // an entry of a glossary or a list of methods: "IROF (Rieger et al.): computes ...", "lrp.*: LRP attributes
    // ..." (the name as a label, then what it does)
    const entry = /^[^\s\p{L}\p{N}]{0,4}:\s+/u.exec(rest);
    if (entry) {
      let what = rest.slice(entry[0].length);
      for (let i = 0; i < 3; i++) {
        const more = /^[`'"*]*([\p{L}\p{N}_-]+)[`'"*]*\s+/u.exec(what);
        if (!more || !subject(more[1]!)) break;
        what = what.slice(more[0].length);
      }
      if (DEFINING_ENTRY.test(what)) return true;
    }
  }
  // introduced with an apposition: "we developed Quantus, an easy-to-use toolbox ...", "we propose X, a method"
  for (const m of lower.matchAll(INTRODUCES)) {
    const word = /^[`'"*]*([\p{L}\p{N}_-]+)[`'"*]*/u.exec(lower.slice(m.index + m[0].length));
    if (
      word &&
      subject(word[1]!) &&
      DEFINING_APPOSITION.test(lower.slice(m.index + m[0].length + word[0].length))
    )
      return true;
  }
  for (const word of intent.subject) {
    const expanded = expansionAt(text, word);
    if (!expanded) continue;
    const before = text.slice(0, expanded.start);
    if (/^\s*(?:(?:the|a|an|der|die|das)\s+)?$/i.test(before) || NAMES_BEFORE.test(before)) return true;
  }
  return false;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
