import { describe, expect, it } from 'vitest';
import { checkRegion } from '../src/checks.js';
import { parseRegion } from '../src/commands/atlas.js';

const fits = (spec: string, size: [number, number]) => () => checkRegion(spec, parseRegion(spec), size);

describe('--region against the input', () => {
  it('takes a box or a centre square that reaches the edge', () => {
    expect(fits('box:4,4,4,4', [8, 8])).not.toThrow();
    expect(fits('box:0,0,8,8', [8, 8])).not.toThrow();
    // the box's width runs along the input's width, its height along the height
    expect(fits('box:0,0,10,8', [8, 10])).not.toThrow();
    expect(fits('center:8', [8, 10])).not.toThrow();
  });

  it('refuses one that passes the edge by a pixel, naming the largest that fits', () => {
    expect(fits('box:5,4,4,4', [8, 8])).toThrow('a box needs x + width <= 8 and y + height <= 8');
    expect(fits('box:4,5,4,4', [8, 8])).toThrow('does not fit the 8x8 input');
    expect(fits('box:0,0,8,10', [8, 10])).toThrow('does not fit the 8x10 input');
    expect(fits('center:9', [8, 10])).toThrow('the largest centre square is center:8');
  });
});
