/**
 * A ViT through the whole CLI: `crp study --model vit.pth` end to end (fine-tuning of the head, evaluation, the
 * three atlases over heads, MLP neurons and block outputs, reference images, pruning of MLP neurons, AttnLRP token
 * heatmaps with the patch grid in the report), and every command (`explain`, `atlas`, `decompose`, `refs`,
 * `prune`, `evaluate`) on the same file, with PyTorch's layer names and the nearest names on a typo. The model is a
 * torchvision-layout ViT (48x48 images, 2x2 patches of 24 pixels, 1 block, 2 heads) written by the repository's
 * .pth writer (tiny-vit.ts).
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPng } from '@crp/vis/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crp, resultOf } from './run.js';
import { writeTinyVit } from './tiny-vit.js';

const PATCHES = join(import.meta.dirname, '..', '..', 'study', 'test', 'fixtures', 'patches');
const B = 'encoder.layers.encoder_layer_0.';
let dir: string;
let model: string;
let data: string;
const vit = () => ['--model', model, '--heads', '2', '--normalize', 'imagenet'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crp-vit-'));
  model = join(dir, 'vit.pth');
  data = join(dir, 'patches');
  await writeTinyVit(model);
  await cp(PATCHES, data, { recursive: true });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('crp study on a ViT', () => {
  it('runs every part with AttnLRP; concepts are heads, MLP neurons and block outputs; token heatmaps show the patch grid', async () => {
    const out = join(dir, 'study');
    const r = await crp(
      'study',
      ...vit(),
      '--data',
      data,
      '--target',
      'mitosis',
      '--samples',
      '6',
      '--fine-tune',
      '1',
      '--out',
      out,
    );
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(await readFile(join(out, 'study.json'), 'utf8')) as {
      options: { composite: string; pruneLayers: string[]; referenceLayers: string[] };
      model: { layers: string[]; concepts: Record<string, string>; parameters: number };
      atlas: { layers: Record<string, { concepts: number }> };
      pruning: {
        rows: { layer: string; concepts: number[] }[];
        sparsity: { layer: string; channels: number; pruned: number; weightShare: number; unit?: string }[];
      };
      references: unknown[];
      heatmaps: { image: string }[];
      decomposition: { layerOrder: string[]; layers: Record<string, { below: string[] }> };
    };
    expect(json.options.composite).toBe('attn_lrp');
    expect(json.model.layers).toEqual([`${B}self_attention.context`, `${B}mlp.0`, `${B}mlp.3`, `${B}add_2`]);
    expect(json.atlas.layers[`${B}self_attention.context`]!.concepts).toBe(2); // heads
    // the report says what a concept is here: not "a channel (conv) or unit (dense)"
    expect(json.model.concepts).toEqual({
      [`${B}self_attention.context`]: 'attention head',
      [`${B}mlp.0`]: 'MLP neuron',
      [`${B}mlp.3`]: 'd_model channel',
      [`${B}add_2`]: 'd_model channel',
    });
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expect(html).toContain('A concept is an attention head at');
    expect(html).not.toContain('A concept is a channel (conv) or unit (dense)');
    expect(json.atlas.layers[`${B}mlp.0`]!.concepts).toBe(32); // MLP neurons
    // MLP neurons and heads pruned; of 2 heads one is pruned per class (a mask may not empty a layer)
    expect(json.options.pruneLayers).toEqual([`${B}mlp.0`, `${B}self_attention.context`]);
    expect(json.options.referenceLayers).toEqual([`${B}mlp.0`, `${B}add_2`]);
    const headRows = json.pruning.rows.filter((r) => r.layer === `${B}self_attention.context`);
    expect(headRows.length).toBeGreaterThan(0);
    for (const r of headRows) expect(r.concepts.length).toBe(1);
    // a head's weights: its 8 of v_proj's 16 columns (16 x 8 kernel entries and 8 biases) of the model's parameters
    const heads = json.pruning.sparsity.find((x) => x.unit === 'head')!;
    expect(heads).toMatchObject({ layer: `${B}self_attention.context`, channels: 2, pruned: 1 });
    expect(heads.weightShare * json.model.parameters).toBeCloseTo(16 * 8 + 8, 6);
    expect(html).toContain('1/2 heads');
    // the decomposition atlas follows the block: output -> MLP neurons -> heads -> the block input
    expect(json.decomposition.layerOrder).toEqual([
      `${B}self_attention.context`,
      `${B}mlp.0`,
      `${B}mlp.3`,
      `${B}add_2`,
    ]);
    expect(json.decomposition.layers[`${B}mlp.0`]!.below).toEqual([`${B}self_attention.context`]);
    expect(json.decomposition.layers[`${B}add_2`]!.below).toEqual([`${B}mlp.0`]);
    expect(json.references.length).toBe(2);
    // the report's heatmaps: one colour per 24 px patch, the grid line on the first row and column of the second
    // patch
    const heat = await readPng(join(out, json.heatmaps[0]!.image));
    expect([heat.width, heat.height]).toEqual([48, 48]);
    const at = (x: number, y: number) =>
      Array.from(heat.data.subarray((y * 48 + x) * heat.channels, (y * 48 + x) * heat.channels + 3));
    for (let i = 0; i < 48; i++) {
      expect(at(24, i)).toEqual([64, 64, 64]);
      expect(at(i, 24)).toEqual([64, 64, 64]);
    }
    expect(at(23, 5)).not.toEqual([64, 64, 64]);
  }, 120_000);

  it('names the nearest layers on a typo', async () => {
    const r = await crp(
      'study',
      ...vit(),
      '--data',
      data,
      '--target',
      'mitosis',
      '--layers',
      `${B}mlp0`,
      '--out',
      join(dir, 'typo'),
    );
    expect(r.code).toBe(2); // a usage error, before anything is loaded or computed
    expect(r.stderr).toContain(`unknown layer '${B}mlp0' (nearest: ${B}mlp.0`);
  });
});

describe('every command on a ViT', () => {
  it('explain, atlas (global and region), decompose, refs, prune and evaluate, with AttnLRP by default', async () => {
    const image = join(data, 'mitosis', 'mitosis-00.png');
    // no --composite: every command explains a ViT with attn_lrp, as the study does
    const attn: string[] = [];
    const explain = await crp(
      'explain',
      ...vit(),
      ...attn,
      image,
      '--target',
      '0',
      '--out',
      join(dir, 'explain'),
    );
    expect(explain.code, explain.stderr).toBe(0);
    const atlas = await crp(
      'atlas',
      ...vit(),
      ...attn,
      '--data',
      data,
      '--samples',
      '4',
      '--target',
      'mitosis',
      '--out',
      join(dir, 'atlas.json'),
    );
    expect(atlas.code, atlas.stderr).toBe(0);
    const layers = JSON.parse(await readFile(join(dir, 'atlas.json'), 'utf8')) as { layerOrder: string[] };
    expect(layers.layerOrder).toContain(`${B}self_attention.context`);
    const region = await crp(
      'atlas',
      ...vit(),
      ...attn,
      '--data',
      data,
      '--samples',
      '4',
      '--target',
      'mitosis',
      '--region',
      'box:0,0,24,24',
      '--out',
      join(dir, 'region.json'),
    );
    expect(region.code, region.stderr).toBe(0);
    const decompose = await crp(
      'decompose',
      ...vit(),
      ...attn,
      '--image',
      image,
      '--target',
      '0',
      '--layer',
      `${B}mlp.3`,
      '--concept',
      '3',
      '--depth',
      '1',
      '--out',
      join(dir, 'graph.json'),
    );
    expect(decompose.code, decompose.stderr).toBe(0);
    const refs = await crp(
      'refs',
      ...vit(),
      ...attn,
      '--data',
      data,
      '--samples',
      '4',
      '--layer',
      `${B}mlp.0`,
      '--channels',
      '0,1',
      '--top-k',
      '2',
      '--out',
      join(dir, 'refs'),
    );
    expect(refs.code, refs.stderr).toBe(0);
    const prune = await crp(
      'prune',
      ...vit(),
      ...attn,
      '--data',
      data,
      '--samples',
      '4',
      '--test',
      '6',
      '--criteria',
      'relevance,random',
      '--fractions',
      '0,0.5',
      '--layers',
      `${B}mlp.0`,
      '--out',
      join(dir, 'prune'),
    );
    expect(prune.code, prune.stderr).toBe(0);
    const evaluate = await crp(
      'evaluate',
      ...vit(),
      '--data',
      data,
      '--samples',
      '3',
      '--target',
      '0',
      '--out',
      join(dir, 'evaluate'),
    );
    expect(evaluate.code, evaluate.stderr).toBe(0);
    // a ViT's default pair: AttnLRP and CP-LRP
    const evaluation = JSON.parse(await readFile(join(dir, 'evaluate', 'evaluation.json'), 'utf8')) as {
      methods: string[];
    };
    expect(evaluation.methods).toEqual(['attn_lrp', 'cp_lrp', 'gradient_x_input', 'random']);
    // the default is attn_lrp itself: the same heatmap and atlas as with --composite attn_lrp
    const explicit = ['--composite', 'attn_lrp'];
    expect(
      (await crp('explain', ...vit(), ...explicit, image, '--target', '0', '--out', join(dir, 'explain-a')))
        .code,
    ).toBe(0);
    for (const file of ['mitosis-00.heatmap.png', 'mitosis-00.overlay.png']) {
      expect(await readFile(join(dir, 'explain', file))).toEqual(
        await readFile(join(dir, 'explain-a', file)),
      );
    }
    const atlasArgs = ['--data', data, '--samples', '4', '--target', 'mitosis'];
    const a = await crp('atlas', ...vit(), ...explicit, ...atlasArgs, '--out', join(dir, 'atlas-a.json'));
    expect(a.code, a.stderr).toBe(0);
    expect(await readFile(join(dir, 'atlas-a.json'), 'utf8')).toBe(
      await readFile(join(dir, 'atlas.json'), 'utf8'),
    );
    // the rules: LXT's
    const listed = await crp('layers', ...vit(), '--json');
    const rules = Object.fromEntries(
      resultOf<{ name: string; rule: string }[]>(listed.stdout).map((r) => [r.name, r.rule]),
    );
    expect([rules[`${B}mlp.0`], rules[`${B}self_attention.softmax`], rules[`${B}ln_1`]]).toEqual([
      'LinearEpsilon',
      'SoftmaxDT',
      'LayerNormEpsilon',
    ]);
  }, 240_000);

  it('prunes heads: --layers names the attention product, every criterion scores its 2 heads', async () => {
    const out = join(dir, 'prune-heads');
    const r = await crp(
      'prune',
      ...vit(),
      '--data',
      data,
      '--samples',
      '4',
      '--test',
      '6',
      '--criteria',
      'relevance,activation,taylor,weight,random',
      '--fractions',
      '0,0.5',
      '--layers',
      `${B}self_attention.context`,
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const curves = JSON.parse(await readFile(join(out, 'curves.json'), 'utf8')) as {
      layers: string[];
      channels: number;
      curves: { criterion: string; points: { pruned: number }[] }[];
    };
    expect(curves.layers).toEqual([`${B}self_attention.context`]);
    expect(curves.channels).toBe(2);
    expect(curves.curves.map((c) => c.criterion)).toEqual([
      'relevance',
      'activation',
      'taylor',
      'weight',
      'random',
    ]);
    for (const c of curves.curves) expect(c.points.map((p) => p.pruned)).toEqual([0, 1]);
  });

  it('decomposes and shows heads: a head into the block input, a block output into MLP neurons, head references', async () => {
    const image = join(data, 'mitosis', 'mitosis-00.png');
    const heads = `${B}self_attention.context`;
    const decompose = (layer: string, concept: string, out: string) =>
      crp(
        'decompose',
        ...vit(),
        '--image',
        image,
        '--target',
        '0',
        '--layer',
        layer,
        '--concept',
        concept,
        '--depth',
        '1',
        '--out',
        join(dir, out),
      );
    const head = await decompose(heads, '1', 'head.json');
    expect(head.code, head.stderr).toBe(0);
    const headGraph = JSON.parse(await readFile(join(dir, 'head.json'), 'utf8')) as {
      nodes: { layer: string; concept: number }[];
    };
    expect(headGraph.nodes[0]).toMatchObject({ layer: heads, concept: 1 });
    expect(new Set(headGraph.nodes.slice(1).map((n) => n.layer))).toEqual(new Set(['encoder.pos_embedding']));
    const output = await decompose(`${B}add_2`, '3', 'output.json');
    expect(output.code, output.stderr).toBe(0);
    const outputGraph = JSON.parse(await readFile(join(dir, 'output.json'), 'utf8')) as {
      nodes: { layer: string }[];
    };
    expect(new Set(outputGraph.nodes.slice(1).map((n) => n.layer))).toEqual(new Set([`${B}mlp.0`]));
    const bad = await decompose(heads, '2', 'bad.json');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`--concept 2: layer ${heads} has 2 heads (0 to 1)`);
    const refs = await crp(
      'refs',
      ...vit(),
      '--data',
      data,
      '--samples',
      '4',
      '--layer',
      heads,
      '--top-k',
      '2',
      '--out',
      join(dir, 'head-refs'),
    );
    expect(refs.code, refs.stderr).toBe(0);
    const written = JSON.parse(await readFile(join(dir, 'head-refs', `refs-${heads}.json`), 'utf8')) as {
      channels: Record<string, unknown[]>;
    };
    expect(Object.keys(written.channels)).toEqual(['0', '1']);
    expect(written.channels['0']!.length).toBe(2);
  }, 120_000);

  it('refuses a CNN composite on a ViT in every command, naming the composites that fit', async () => {
    const image = join(data, 'mitosis', 'mitosis-00.png');
    const cnn = ['--composite', 'epsilon_plus_flat'];
    const d = ['--data', data, '--samples', '4'];
    const runs: [string, string[]][] = [
      ['layers', []],
      ['explain', [image, '--out', join(dir, 'no')]],
      ['atlas', [...d, '--target', 'mitosis', '--out', join(dir, 'no.json')]],
      [
        'decompose',
        [
          '--image',
          image,
          '--target',
          '0',
          '--layer',
          `${B}mlp.3`,
          '--concept',
          '3',
          '--out',
          join(dir, 'no.json'),
        ],
      ],
      ['refs', [...d, '--layer', `${B}mlp.0`, '--out', join(dir, 'no')]],
      ['prune', [...d, '--criteria', 'random', '--out', join(dir, 'no')]],
      ['study', ['--data', data, '--target', 'mitosis', '--out', join(dir, 'no')]],
    ];
    for (const [command, rest] of runs) {
      const r = await crp(command, ...vit(), ...cnn, ...rest);
      expect(r.code, `${command}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(
        `crp ${command}: --composite: composite 'epsilon_plus_flat' is for CNNs; this model is a transformer`,
      );
      expect(r.stderr).toContain('explained with attn_lrp or cp_lrp');
    }
    const evaluate = await crp(
      'evaluate',
      ...vit(),
      '--composites',
      'attn_lrp,epsilon_alpha2_beta1',
      '--data',
      data,
      '--target',
      '0',
      '--out',
      join(dir, 'no'),
    );
    expect(evaluate.code, evaluate.stderr).toBe(2);
    expect(evaluate.stderr).toContain("composite 'epsilon_alpha2_beta1' is for CNNs");
  }, 120_000);
});
