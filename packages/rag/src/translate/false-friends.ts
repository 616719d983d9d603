/**
 * Dictionary pairs that are wrong for this use, as [German stem, English stem]: look-alikes ("Stand"/"stand"
 * are handled by weighting), and above all **stem collisions**, where the Snowball stem of an everyday word
 * is also the stem of another word whose sense the dictionary lists first: "messen" (to measure) and
 * "Messe" (trade fair) both stem to `mess`; "Anzahl" (number) and "Anzahlung" (down payment) to `anzahl`;
 * "Token" and "Tok..." casino chips to `tok`; "Rat" (advice) and "Rate" (instalment) to `rat`; "bekommen"
 * (to get) and "bekömmlich" (digestible) to `bekomm`; "Regel" (rule) and "Regelung" (control) to `regel`.
 * `QueryTranslator.fromStemPairs(pairs, { exclude: FALSE_FRIENDS })` drops them in both directions.
 */
export const FALSE_FRIENDS: readonly (readonly [string, string])[] = [
  ['mess', 'fair'],
  ['mess', 'knife'],
  ['anzahl', 'down payment'],
  ['anzahl', 'advanc deposit'],
  ['anzahl', 'deposit'],
  ['anzahl', 'pay on account'],
  ['anzahl', 'downpay'],
  ['tok', 'casino token'],
  ['tok', 'chip'],
  ['tok', 'check'],
  ['tok', 'chequ'],
  ['rat', 'instal'],
  ['bekomm', 'digest'],
  ['bekomm', 'light'],
  ['bekomm', 'salubri'],
  ['regel', 'regim'],
  ['regel', 'closed-loop control'],
  ['regel', 'automat control'],
];

/**
 * Known pairs to check a dictionary against: a German word as written, the English word it must not be taken
 * for (a false friend or a stem collision), and the English stem it means.
 */
export const KNOWN_TRANSLATIONS: readonly { de: string; not: string; means: string }[] = [
  { de: 'messen', not: 'fair', means: 'measur' },
  { de: 'Anzahl', not: 'down payment', means: 'number' },
  { de: 'Token', not: 'casino token', means: 'token' },
  { de: 'Rat', not: 'instal', means: 'advic' },
  { de: 'bekommen', not: 'digest', means: 'receiv' },
  { de: 'Regel', not: 'regim', means: 'rule' },
  { de: 'Gift', not: 'gift', means: 'poison' },
  { de: 'Handy', not: 'handi', means: 'mobil phone' },
  { de: 'Chef', not: 'chef', means: 'chief' },
  { de: 'eventuell', not: 'eventu', means: 'possibl' },
  { de: 'aktuell', not: 'actual', means: 'recent' },
  { de: 'sensibel', not: 'sensibl', means: 'sensit' },
  { de: 'spenden', not: 'spend', means: 'donat' },
  { de: 'Billion', not: 'billion', means: 'trillion' },
];
