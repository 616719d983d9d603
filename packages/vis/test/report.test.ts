import { CrpError } from '@crp/common';
import { describe, expect, it } from 'vitest';
import { conceptTable, markdownToHtml, type RasterImage, renderReport, scatterChart } from '../src/index.js';

const tiny: RasterImage = { width: 2, height: 1, channels: 3, data: Uint8Array.of(255, 0, 0, 0, 0, 255) };

describe('markdownToHtml', () => {
  it('converts the supported subset', () => {
    expect(markdownToHtml('# Head\n\nSome **bold** and *it* and `a<b`.\nSame paragraph.')).toBe(
      '<h3>Head</h3>\n<p>Some <strong>bold</strong> and <em>it</em> and <code>a&lt;b</code>. Same paragraph.</p>',
    );
    expect(markdownToHtml('- one\n- two\n\n1. first')).toBe(
      '<ul><li>one</li><li>two</li></ul>\n<ol><li>first</li></ol>',
    );
    expect(markdownToHtml('[site](https://example.org/a?b=1&c=2)')).toBe(
      '<p><a href="https://example.org/a?b=1&amp;c=2">site</a></p>',
    );
  });

  it('lets no HTML or script URL through', () => {
    const html = markdownToHtml('<img src=x onerror=alert(1)> [x](javascript:alert(1))');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('href="javascript');
    expect(html).toContain('&lt;img');
  });
});

describe('renderReport', () => {
  it('builds one self-contained, escaped document', async () => {
    const html = await renderReport({
      title: 'Report <1>',
      subtitle: 'sub & title',
      meta: { model: 'vgg', n: 3 },
      sections: [
        { kind: 'text', title: 'Intro', markdown: 'Hello **world**' },
        { kind: 'images', title: 'Images', items: [{ image: tiny, caption: 'tiny "one"' }], columns: 3 },
        conceptTable(
          [
            { concept: 5, relevance: 0.5, images: [tiny] },
            { concept: 6, relevance: -0.25 },
          ],
          {
            title: 'Concepts',
          },
        ),
        { kind: 'plot', title: 'Plot', plot: scatterChart([{ x: 0, y: 1 }]), caption: 'a plot' },
      ],
    });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<title>Report &lt;1&gt;</title>');
    expect(html).toContain("default-src 'none'; img-src data:");
    // nothing is loaded from elsewhere: every src is a data URI, no stylesheet or script links
    const sources = [...html.matchAll(/\ssrc="([^"]*)"/g)].map((m) => m[1]!);
    expect(sources).toHaveLength(3);
    expect(sources.filter((s) => s.startsWith('data:image/png;base64,'))).toHaveLength(2);
    expect(sources.filter((s) => s.startsWith('data:image/svg+xml;base64,'))).toHaveLength(1);
    expect(html).not.toMatch(/<script|<link/);
    expect(html).toContain('<dt>model</dt><dd>vgg</dd>');
    expect(html).toContain('<figcaption>tiny &quot;one&quot;</figcaption>');
    expect(html).toContain('class="pixelated"');
    expect(html).toContain('style="--cols:3"');
    // bars: 0.5 is the column maximum (100%), -0.25 half of it and blue
    expect(html).toContain('<div class="fill" style="width:100.0%"></div>');
    expect(html).toContain('<div class="fill neg" style="width:50.0%"></div>');
    expect(html).toContain('<nav class="toc">');
  });

  it('lets a long dotted name in a table cell break after its dots, and nothing else', async () => {
    const html = await renderReport({
      title: 't',
      sections: [
        {
          kind: 'table',
          columns: ['layer', 'other'],
          rows: [
            ['encoder.layers.encoder_layer_11.self_attention.context', '1.89 → 1.46'],
            ['features.25', 'a.b.c d'],
            ['<b>.x.y', '0.5'],
          ],
        },
      ],
    });
    expect(html).toContain(
      '<td>encoder.<wbr>layers.<wbr>encoder_layer_11.<wbr>self_attention.<wbr>context</td><td>1.89 → 1.46</td>',
    );
    // one dot, or spaces to break at: as it was; the name is escaped before the breaks go in
    expect(html).toContain('<td>features.25</td><td>a.b.c d</td>');
    expect(html).toContain('<td>&lt;b&gt;.<wbr>x.<wbr>y</td><td>0.5</td>');
  });

  it('rejects malformed sections with typed errors', async () => {
    const bad = renderReport({
      title: 't',
      sections: [{ kind: 'table', columns: ['a', 'b'], rows: [['only one']] }],
    });
    await expect(bad).rejects.toBeInstanceOf(CrpError);
    await expect(bad).rejects.toMatchObject({ code: 'invalid-shape' });
    await expect(renderReport({ title: 't', sections: [{ kind: 'video' } as never] })).rejects.toMatchObject({
      code: 'invalid-argument',
    });
  });
});
