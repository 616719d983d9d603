import { CrpError } from '@crp/common';
import type { Config, TopLevelSpec } from 'vega-lite';

/** A vega-lite specification, as produced by the chart builders and accepted by {@link renderSvg}. */
export type VegaLiteSpec = TopLevelSpec;

/** The font stack of the charts (the same as the HTML report's). */
export const PLOT_FONT = 'Inter, Segoe UI, Helvetica Neue, Arial, DejaVu Sans, Liberation Sans, sans-serif';

/** Colours of positive and negative relevance, matching the `bwr` colour map's ends but a little softer. */
export const RELEVANCE_COLORS = Object.freeze({
  /** Bars and fills of positive relevance (red). */
  positive: '#d7301f',
  /** Bars and fills of negative relevance (blue). */
  negative: '#2166ac',
});

/** The shared look of all charts: quiet axes, light grid, left-aligned titles. */
export const PLOT_CONFIG: Config = {
  background: 'white',
  padding: 12,
  font: PLOT_FONT,
  view: { stroke: null },
  title: {
    fontSize: 15,
    fontWeight: 600,
    anchor: 'start',
    color: '#111827',
    subtitleColor: '#6b7280',
    offset: 12,
  },
  axis: {
    labelColor: '#4b5563',
    titleColor: '#374151',
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 600,
    gridColor: '#e5e7eb',
    domainColor: '#9ca3af',
    tickColor: '#9ca3af',
  },
  legend: {
    labelColor: '#374151',
    titleColor: '#374151',
    labelFontSize: 11,
    titleFontSize: 12,
    orient: 'bottom',
    // no cut: vega cuts labels at 160 px by default, and composite names ("epsilon_alpha2_beta1") run past it
    labelLimit: 0,
    columns: 3, // then the whole names wrap in rows rather than widen the picture
  },
  header: { labelColor: '#111827', labelFontSize: 12, labelFontWeight: 600, titleFontSize: 12 },
  range: {
    category: [
      '#4c78a8',
      '#f58518',
      '#54a24b',
      '#e45756',
      '#72b7b2',
      '#b279a2',
      '#eeca3b',
      '#9d755d',
      '#ff9da6',
      '#bab0ac',
    ],
  },
};

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

function finite(value: number, what: string): number {
  if (!Number.isFinite(value))
    throw new CrpError('invalid-value', `${what} is ${value}; plots need finite numbers`);
  return value;
}

function titleOf(title: string | undefined, subtitle: string | undefined): object {
  if (title === undefined) return {};
  return { title: subtitle === undefined ? { text: title } : { text: title, subtitle } };
}

/** Relevance of one concept (channel / unit) in one layer. */
export interface ConceptRelevance {
  /** Layer name, as in the model. */
  readonly layer: string;
  /** Concept (channel) id. */
  readonly concept: number | string;
  /** Its relevance (any sign; often a share of the layer's total). */
  readonly relevance: number;
  /** Optional label shown instead of `#concept`. */
  readonly label?: string;
}

/** Options of {@link conceptRelevanceChart}. */
export interface ConceptRelevanceChartOptions {
  /** Chart title. */
  title?: string;
  /** Smaller line under the title. */
  subtitle?: string;
  /** Concepts shown per layer, the most relevant by |relevance|; default 10. */
  top?: number;
  /** Width of the bars' area in pixels; default 420. */
  width?: number;
  /** Height per bar in pixels; default 18. */
  barHeight?: number;
  /** Axis title; default 'Relevance'. */
  xTitle?: string;
}

/**
 * Horizontal bar chart of concept relevance, one panel per layer (in the order the layers first appear),
 * the `top` concepts of each by |relevance|, positive bars red and negative bars blue.
 *
 * @returns a vega-lite spec; render it with {@link renderSvg} or `renderPng` of `@crp/vis/node`
 * @throws CrpError `invalid-value` for non-finite relevance, `invalid-argument` for an empty list.
 */
export function conceptRelevanceChart(
  entries: readonly ConceptRelevance[],
  options: ConceptRelevanceChartOptions = {},
): VegaLiteSpec {
  const { top = 10, width = 420, barHeight = 18, xTitle = 'Relevance' } = options;
  if (entries.length === 0)
    throw new CrpError('invalid-argument', 'conceptRelevanceChart needs at least one entry');
  if (!Number.isInteger(top) || top < 1) {
    throw new CrpError('invalid-argument', `conceptRelevanceChart top must be an integer >= 1; got ${top}`);
  }
  const layers = [...new Set(entries.map((e) => e.layer))];
  const values = layers.flatMap((layer) =>
    entries
      .filter((e) => e.layer === layer)
      .map((e) => ({ ...e, relevance: finite(e.relevance, `relevance of ${layer} #${e.concept}`) }))
      .sort((a, b) => Math.abs(b.relevance) - Math.abs(a.relevance))
      .slice(0, top)
      .map((e, rank) => ({
        layer,
        concept: e.label ?? `#${e.concept}`,
        relevance: e.relevance,
        sign: e.relevance >= 0 ? 'positive' : 'negative',
        rank,
      })),
  );
  return {
    $schema: SCHEMA,
    ...titleOf(options.title, options.subtitle),
    config: PLOT_CONFIG,
    data: { values },
    facet: {
      row: {
        field: 'layer',
        type: 'nominal',
        sort: layers,
        title: null,
        header: {
          labelAngle: 0,
          labelAlign: 'left',
          labelAnchor: 'start',
          labelOrient: 'top',
          labelPadding: 6,
        },
      },
    },
    spacing: 14,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width,
      height: { step: barHeight },
      layer: [
        {
          mark: { type: 'bar', cornerRadiusEnd: 2, height: { band: 0.72 } },
          encoding: {
            y: {
              field: 'concept',
              type: 'nominal',
              sort: { field: 'rank', order: 'ascending' },
              title: null,
            },
            x: {
              field: 'relevance',
              type: 'quantitative',
              title: xTitle,
              axis: { format: '~g', tickCount: 6 },
            },
            color: {
              field: 'sign',
              type: 'nominal',
              scale: {
                domain: ['positive', 'negative'],
                range: [RELEVANCE_COLORS.positive, RELEVANCE_COLORS.negative],
              },
              legend: null,
            },
          },
        },
        { mark: { type: 'rule', color: '#6b7280', strokeWidth: 1 }, encoding: { x: { datum: 0 } } },
      ],
    },
  } as VegaLiteSpec;
}

/** One pruning curve: model accuracy as a growing fraction of concepts is pruned by one criterion. */
export interface PruningCurve {
  /** Name of the pruning criterion (e.g. 'relevance', 'activation', 'random'). */
  readonly criterion: string;
  /** Measurements in any order of `fraction`. */
  readonly points: readonly {
    /** Fraction of concepts pruned, in [0, 1]. */
    readonly fraction: number;
    /** Accuracy (or any score) measured there. */
    readonly accuracy: number;
  }[];
}

/** Options of every chart with an x and a y axis: its title, size and axis titles. */
export interface XyChartOptions {
  /** Chart title. */
  title?: string;
  /** Smaller line under the title. */
  subtitle?: string;
  /** Width of the plot area in pixels. */
  width?: number;
  /** Height of the plot area in pixels. */
  height?: number;
  /** Title of the x axis. */
  xTitle?: string;
  /** Title of the y axis. */
  yTitle?: string;
}

/** Options of {@link pruningCurveChart}. */
export interface PruningCurveChartOptions extends XyChartOptions {
  /** Accuracy of the unpruned model, drawn as a dashed line. */
  baseline?: number;
  /** Accuracy of chance level, drawn as a dotted line. */
  chance?: number;
  /** d3 format of the y axis; default '.0%' (accuracies). A score that is not a share (e.g. a correlation) takes
   * '.1f'. */
  yFormat?: string;
}

/**
 * Line chart of accuracy against the fraction pruned, one coloured line per criterion (axes as percentages).
 *
 * @throws CrpError `invalid-value` for non-finite numbers, `invalid-argument` for no curves or fractions
 *   outside [0, 1].
 */
export function pruningCurveChart(
  curves: readonly PruningCurve[],
  options: PruningCurveChartOptions = {},
): VegaLiteSpec {
  const {
    width = 460,
    height = 280,
    xTitle = 'Fraction of concepts pruned',
    yTitle = 'Accuracy',
    baseline,
    chance,
    yFormat = '.0%',
  } = options;
  if (curves.length === 0 || curves.every((c) => c.points.length === 0)) {
    throw new CrpError('invalid-argument', 'pruningCurveChart needs at least one curve with points');
  }
  const values = curves.flatMap((c) =>
    c.points.map((p) => {
      const fraction = finite(p.fraction, `fraction of '${c.criterion}'`);
      if (fraction < 0 || fraction > 1) {
        throw new CrpError('invalid-argument', `fraction ${fraction} of '${c.criterion}' is outside [0, 1]`);
      }
      return {
        criterion: c.criterion,
        fraction,
        accuracy: finite(p.accuracy, `accuracy of '${c.criterion}'`),
      };
    }),
  );
  const rules: object[] = [];
  if (baseline !== undefined) {
    rules.push({
      mark: { type: 'rule', strokeDash: [6, 4], color: '#6b7280' },
      encoding: { y: { datum: finite(baseline, 'baseline') } },
    });
  }
  if (chance !== undefined) {
    rules.push({
      mark: { type: 'rule', strokeDash: [2, 3], color: '#9ca3af' },
      encoding: { y: { datum: finite(chance, 'chance') } },
    });
  }
  return {
    $schema: SCHEMA,
    ...titleOf(options.title, options.subtitle),
    config: PLOT_CONFIG,
    width,
    height,
    data: { values },
    layer: [
      ...rules,
      {
        mark: { type: 'line', strokeWidth: 2.2, interpolate: 'monotone', point: { filled: true, size: 36 } },
        encoding: {
          x: {
            field: 'fraction',
            type: 'quantitative',
            title: xTitle,
            scale: { domain: [0, 1] },
            axis: { format: '.0%' },
          },
          y: {
            field: 'accuracy',
            type: 'quantitative',
            title: yTitle,
            axis: { format: yFormat },
            scale: { zero: true },
          },
          color: {
            field: 'criterion',
            type: 'nominal',
            title: 'Criterion',
            sort: curves.map((c) => c.criterion),
          },
        },
      },
    ],
  } as VegaLiteSpec;
}

/** One point of a 2-D embedding map. */
export interface ScatterPoint {
  /** Horizontal coordinate. */
  readonly x: number;
  /** Vertical coordinate. */
  readonly y: number;
  /** Colour group (e.g. a class or cluster). */
  readonly group?: string;
  /** Text drawn next to the point (e.g. a concept id). */
  readonly label?: string;
}

/** Options of {@link scatterChart}. */
export interface ScatterChartOptions extends XyChartOptions {
  /** Legend title of the groups; default 'Group'. */
  groupTitle?: string;
  /** Point area in px²; default 60. */
  pointSize?: number;
}

/**
 * 2-D scatter plot (e.g. a t-SNE / UMAP embedding of concepts), coloured by `group`, with optional labels.
 *
 * @throws CrpError `invalid-value` for non-finite coordinates, `invalid-argument` for no points.
 */
export function scatterChart(
  points: readonly ScatterPoint[],
  options: ScatterChartOptions = {},
): VegaLiteSpec {
  const {
    width = 380,
    height = 380,
    xTitle = 'x',
    yTitle = 'y',
    groupTitle = 'Group',
    pointSize = 60,
  } = options;
  if (points.length === 0) throw new CrpError('invalid-argument', 'scatterChart needs at least one point');
  const values = points.map((p, i) => ({
    x: finite(p.x, `x of point ${i}`),
    y: finite(p.y, `y of point ${i}`),
    group: p.group ?? '',
    label: p.label ?? '',
  }));
  const grouped = points.some((p) => p.group !== undefined);
  const labelled = points.some((p) => p.label !== undefined);
  const x = {
    field: 'x',
    type: 'quantitative',
    title: xTitle,
    scale: { zero: false, nice: true, padding: 14 },
  };
  const y = {
    field: 'y',
    type: 'quantitative',
    title: yTitle,
    scale: { zero: false, nice: true, padding: 14 },
  };
  const layer: object[] = [
    {
      mark: { type: 'circle', size: pointSize, opacity: 0.85, stroke: 'white', strokeWidth: 0.8 },
      encoding: {
        x,
        y,
        ...(grouped
          ? { color: { field: 'group', type: 'nominal', title: groupTitle } }
          : { color: { value: '#4c78a8' } }),
      },
    },
  ];
  if (labelled) {
    layer.push({
      mark: { type: 'text', align: 'left', dx: 6, dy: -4, fontSize: 10, color: '#374151' },
      encoding: { x, y, text: { field: 'label' } },
    });
  }
  return {
    $schema: SCHEMA,
    ...titleOf(options.title, options.subtitle),
    config: PLOT_CONFIG,
    width,
    height,
    data: { values },
    layer,
  } as VegaLiteSpec;
}
