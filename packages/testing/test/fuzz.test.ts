/** The fuzzing helper: what counts as a finding, that a seed gives the same files, and the JSON mutations. */
import { CrpError } from '@crp/common';
import { describe, expect, it } from 'vitest';
import { byteMutators, describeFindings, fuzz, mulberry32, mutateJson } from '../src/index.js';

const seeds = { a: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) };

describe('fuzz', () => {
  it('counts a CrpError of an accepted code as a refusal, anything else as a finding', async () => {
    let calls = 0;
    const report = await fuzz({
      seeds,
      runs: 30,
      seed: 1,
      codes: ['corrupt-file'],
      target: () => {
        calls++;
        if (calls % 3 === 0) throw new CrpError('corrupt-file', 'refused');
        if (calls % 3 === 1) return 'read';
        throw calls === 2 ? new RangeError('out of bounds') : new CrpError('invalid-argument', 'wrong code');
      },
      maxFindings: 2,
    });
    // run 0 reads, run 1 a RangeError, run 2 a refusal, run 3 reads, run 4 a CrpError of another code: stop at 2
    expect(report).toMatchObject({ runs: 5, accepted: 2, refused: { 'corrupt-file': 1 } });
    expect(report.findings.map((f) => [f.run, f.error])).toEqual([
      [1, 'RangeError: out of bounds'],
      [4, 'CrpError invalid-argument: wrong code'],
    ]);
    expect(describeFindings(report)).toMatch(
      /^run 1 \(a \+ [a-zA-Z +]+, \d+ bytes\): RangeError: out of bounds\nrun 4/,
    );
  });

  it('gives the same mutated files for the same seed, other files for another', async () => {
    const files = async (seed: number) => {
      const seen: string[] = [];
      await fuzz({
        seeds,
        runs: 50,
        seed,
        codes: [],
        target: (b) => void seen.push(Array.from(b).join(',')),
      });
      return seen;
    };
    const one = await files(7);
    expect(await files(7)).toEqual(one);
    expect(await files(8)).not.toEqual(one);
    expect(new Set(one).size).toBeGreaterThan(25);
  });

  it('mutates bytes within bounds: truncation shortens, insertion and duplication lengthen', () => {
    const rng = mulberry32(3);
    for (let i = 0; i < 200; i++) {
      const b = seeds.a.slice();
      expect(byteMutators.truncate!(b, rng).length).toBeLessThanOrEqual(8);
      expect(byteMutators.insert!(seeds.a.slice(), rng).length).toBeGreaterThan(8);
      expect(byteMutators.duplicate!(seeds.a.slice(), rng).length).toBeGreaterThan(8);
      expect(byteMutators.interesting!(seeds.a.slice(), rng).length).toBe(8);
    }
  });

  it('mutates JSON by replacing, deleting or copying one field', () => {
    const rng = mulberry32(5);
    const changed = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const value = { name: 'w', shape: [2, 3], dtype: 'F32' };
      mutateJson(value, rng);
      changed.add(JSON.stringify(value));
    }
    expect(changed.size).toBeGreaterThan(10);
    expect([...changed]).toContain('{"name":"w","shape":[2,3]}'); // dtype deleted
  });
});
