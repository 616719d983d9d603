import { describe, expect, it } from 'vitest';
import {
  ANY_BLOCK,
  type AnnouncementPart,
  announcesBlock,
  STEP_COMMAND,
} from '../src/answer/announcement.js';

const prose = (text: string, source = 1): AnnouncementPart => ({ kind: 'paragraph', text, source });
const code: AnnouncementPart = { kind: 'code', text: '$ gartenplan neu --beete 4', source: 1 };
/** What the scorer (a step's command) and the window (any block) say of `s` before `next`. */
const asked = (s: AnnouncementPart | undefined, next: AnnouncementPart | undefined) => [
  announcesBlock(s, next, STEP_COMMAND),
  announcesBlock(s, next, ANY_BLOCK),
];

describe('one reading of "announces a block", asked as a step\'s command and as any block', () => {
  // the scorer read only a ":" at the very end and took table rows; the window read the words and closing quotes
  // too and took prose only: now both read an announcement alike
  it('reads the words and a closing quote as ":" is read, for both (the scorer read only ":" before)', () => {
    expect(asked(prose('Install the plugin as follows.'), code)).toEqual([true, true]);
    expect(asked(prose('Einen Plan für vier Beete erstellen Sie folgendermaßen'), code)).toEqual([
      true,
      true,
    ]);
    expect(asked(prose('The manual says to run this in a shell:"'), code)).toEqual([true, true]);
    expect(asked(prose('Einen Plan legen Sie an, indem Sie den Befehl so eingeben: '), code)).toEqual([
      true,
      true,
    ]);
  });

  it('takes no table row, heading or code block as an announcement, for both (the scorer took table rows)', () => {
    for (const kind of ['table-row', 'heading', 'code'] as const)
      expect(asked({ kind, text: 'Befehl zum Anlegen:', source: 1 }, code)).toEqual([false, false]);
  });

  it("keeps apart what the two ask: a command of the reader's step, or any block kept with its lead-in", () => {
    // a result shown, not a step
    expect(asked(prose('Here are its contents:'), code)).toEqual([false, true]);
    // a list or table rows are blocks, not a command
    expect(
      asked(prose('Das Werkzeug liest diese Dateien:'), { kind: 'list-item', text: 'a.toml', source: 1 }),
    ).toEqual([false, true]);
    expect(
      asked(prose('The options are:'), { kind: 'table-row', text: 'Option: --beete', source: 1 }),
    ).toEqual([false, true]);
    // prose cut off before code goes on in it (window); as a step it is too often a label ("Warning", "DOI")
    expect(asked(prose('The development version can be cloned and installed with'), code)).toEqual([
      false,
      true,
    ]);
    expect(asked(prose('Warning'), code)).toEqual([false, true]);
    // a sentence that ends its chunk: what it announces is in the next chunk (window), no command is shown (scorer)
    expect(asked(prose('Install the plugin as follows:'), undefined)).toEqual([false, true]);
    expect(asked(prose('Install the plugin as follows:'), { ...code, source: 2 })).toEqual([false, true]);
    // nothing announced: a full sentence before code, prose after prose
    expect(asked(prose('The plugin is on the package index.'), code)).toEqual([false, false]);
    expect(asked(prose('Install the plugin as follows:'), prose('It needs Python 3.'))).toEqual([
      false,
      false,
    ]);
    expect(asked(undefined, code)).toEqual([false, false]);
  });
});
