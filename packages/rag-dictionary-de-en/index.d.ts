/** German-English word pairs (Snowball stems) from the Ding dictionary; see README.md. */
export interface StemPairDictionary {
  readonly name: string;
  /** Where the pairs come from (Ding version, Debian package). */
  readonly source: string;
  /** SPDX licence of the data: GPL-2.0-or-later. */
  readonly license: string;
  readonly format: string;
  readonly count: number;
  /** One pair a line: German stem(s) TAB English stem(s) TAB weight. */
  readonly pairs: string;
}

declare const dictionary: StemPairDictionary;
export default dictionary;
