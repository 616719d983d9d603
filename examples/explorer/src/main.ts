/**
 * The concept explorer page: wires the controls to the computations of explainer.ts. Every computation runs in
 * this page on the TF.js backend chosen in backend.ts; state lives in `state`, and every user action goes
 * through `act`, which turns any error into a visible message.
 *
 * URL parameters (all optional): `model` (URL of a model.json), `image` (URL of an image), `layer`, `composite`,
 * `target`, `backend` (webgl, wasm or cpu first), `timeout` (seconds a load may wait for the server).
 */
import './style.css';
import type { ConceptStep } from '@crp/attribution';
import { isCrpError } from '@crp/common';
import { COMPOSITE_NAMES, type CompositeName } from '@crp/lrp';
import * as tf from '@tensorflow/tfjs-core';
import { BACKENDS, type BackendName, startBackend } from './backend.js';
import { conceptImage, drawRaster, heatmapImage, inputImage, tokenHeatmapImage } from './draw.js';
import {
  type ClassExplanation,
  type ConceptLayer,
  type ConditionalHeatmap,
  Explainer,
  fittingComposite,
  imageInputShape,
  type Prediction,
  predict,
} from './explainer.js';
import { type FlippingCurve, flippingChart, pixelFlippingCurves } from './faithfulness.js';
import { GuardedLoad, loadLimits } from './guarded-load.js';
import {
  decodeImageBlob,
  fetchImage,
  type LoadedImage,
  SCALINGS,
  type Scaling,
  toModelInput,
} from './load-image.js';
import { type LoadedModel, loadModelFromFiles, loadModelFromUrl } from './load-model.js';
import { RetiredObjects } from './retired.js';

const DEFAULT_MODEL = `${import.meta.env.BASE_URL}models/digits/model.json`;
const SAMPLES = `${import.meta.env.BASE_URL}digits/index.json`;

/** zennit's names of the composites, and what they do (shown as the option's tooltip). */
const COMPOSITES: Record<CompositeName, [string, string]> = {
  epsilon_plus_flat: [
    'EpsilonPlusFlat',
    'ε rule for dense layers, z⁺ for conv layers, flat for the first layer',
  ],
  epsilon_plus: ['EpsilonPlus', 'ε rule for dense layers, z⁺ for conv layers'],
  epsilon_alpha2_beta1_flat: [
    'EpsilonAlpha2Beta1Flat',
    'ε rule for dense layers, α2β1 for conv layers, flat for the first layer',
  ],
  epsilon_alpha2_beta1: ['EpsilonAlpha2Beta1', 'ε rule for dense layers, α2β1 for conv layers'],
  epsilon_gamma_box: [
    'EpsilonGammaBox',
    'ε rule for dense layers, γ for conv layers, z-box (input bounds from the scaling) for the first layer',
  ],
  attn_lrp: [
    'AttnLRP',
    "LXT's rules for transformers: ε on linear layers, uniform rule on attention products",
  ],
  cp_lrp: ['CP-LRP', 'AttnLRP without relevance through the attention weights (for comparison)'],
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  backend: $('backend'),
  messages: $('messages'),
  modelSummary: $('model-summary'),
  modelFiles: $<HTMLInputElement>('model-files'),
  modelUrlForm: $<HTMLFormElement>('model-url-form'),
  modelUrl: $<HTMLInputElement>('model-url'),
  modelDefault: $<HTMLButtonElement>('model-default'),
  scaling: $<HTMLSelectElement>('scaling'),
  samples: $('samples'),
  imageFile: $<HTMLInputElement>('image-file'),
  target: $<HTMLSelectElement>('target'),
  composite: $<HTMLSelectElement>('composite'),
  layer: $<HTMLSelectElement>('layer'),
  topK: $<HTMLSelectElement>('top-k'),
  explain: $<HTMLButtonElement>('explain'),
  progress: $('progress'),
  progressLabel: $('progress-label'),
  progressBar: $('progress-bar'),
  prediction: $('prediction'),
  input: $<HTMLCanvasElement>('input'),
  box: $('box'),
  drawSurface: $('draw-surface'),
  imageNote: $('image-note'),
  heatmap: $<HTMLCanvasElement>('heatmap'),
  heatmapCaption: $('heatmap-caption'),
  conceptsTitle: $('concepts-title'),
  concepts: $('concepts'),
  detail: $('detail'),
  detailTitle: $('detail-title'),
  decompositionPath: $('decomposition-path'),
  decompositionNode: $('decomposition-node'),
  decompositionTitle: $('decomposition-title'),
  decompositionHelp: $('decomposition-help'),
  decomposition: $('decomposition'),
  region: $('region'),
  pixelFlipping: $('pixel-flipping'),
  pixelFlippingRun: $<HTMLButtonElement>('pixel-flipping-run'),
  pixelFlippingSummary: $('pixel-flipping-summary'),
};

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

const state: {
  model: LoadedModel | undefined;
  inputShape: [number, number, number] | undefined;
  explainers: Map<CompositeName, Explainer>;
  /** Why the current model cannot be explained (shown, and Explain is disabled). */
  unexplainable: string | undefined;
  image: LoadedImage | undefined;
  x: tf.Tensor4D | undefined;
  prediction: Prediction | undefined;
  explanation: (ClassExplanation & { target: number; layer: ConceptLayer | undefined }) | undefined;
  selected: number | undefined;
  /** The decomposition shown: the selected concept, then the sub-concepts clicked through (the last is
   * decomposed). */
  path: ConceptStep[];
  box: Box | undefined;
  /** Counts explanations started, images and models asked for (`replacing`) and results cleared: a step of an older
   * computation stops when it changed, before it uses an input or explainer that may have been disposed meanwhile. */
  generation: number;
} = {
  model: undefined,
  inputShape: undefined,
  explainers: new Map(),
  unexplainable: undefined,
  image: undefined,
  x: undefined,
  prediction: undefined,
  explanation: undefined,
  selected: undefined,
  path: [],
  box: undefined,
  generation: 0,
};

const params = new URLSearchParams(location.search);

const limits = loadLimits(params.get('timeout'));

/** The guard of a model's or an image's fetches: `signal` (from `replacing`) stops them when a newer load begins. */
function modelLoad(signal?: AbortSignal): GuardedLoad {
  return new GuardedLoad('a model', limits.model, signal);
}

function imageLoad(signal?: AbortSignal): GuardedLoad {
  return new GuardedLoad('an image', limits.image, signal);
}

// ---------------------------------------------------------------------------------------------------------
// messages, progress, busy state

function message(kind: 'error' | 'warning' | 'info', text: string): void {
  const div = document.createElement('div');
  div.className = `message ${kind}`;
  div.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const span = document.createElement('span');
  span.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.title = 'Dismiss';
  close.addEventListener('click', () => div.remove());
  div.append(span, close);
  el.messages.append(div);
}

function clearMessages(): void {
  el.messages.replaceChildren();
}

function describe(err: unknown): string {
  const text = isCrpError(err) || err instanceof Error ? err.message : String(err);
  // TF.js on WebGL: a tensor larger than the GPU's textures (e.g. VGG16's 102.8M-value dense kernel at 8192²)
  if (/greater than WebGL maximum/.test(text)) {
    return `${text} This model has a tensor larger than this GPU's textures can hold: open the page with ?backend=wasm to compute on the CPU.`;
  }
  return text;
}

let actionsStarted = 0;
let actionsDone = 0;
let actionsSuperseded = 0;

/** Thrown by a step of an action when a newer image, model or explanation began (`state.generation` changed): the
 * action stops before it uses what the newer one replaced, and `act` shows no message for it. */
class Superseded extends Error {}

/** Stops the action that began in `generation` if a newer one began since (call it after every wait). */
function stopIfSuperseded(generation: number): void {
  if (generation !== state.generation) throw new Superseded(`generation ${generation} superseded`);
}

/** What a load brings: an image and a model load independently, so a digit clicked while a model loads (the start's
 * too) is shown, and explained once that model is there, and a model asked for meanwhile explains the image. */
type LoadKind = 'image' | 'model';

/** Aborts the fetches of the load of each kind asked for last, when a newer one of that kind is asked for: a fetch
 * that never answers then ends its action (as superseded) instead of keeping the page busy, and a load that ends
 * after a newer one of its kind was asked for is not shown. */
const lastLoads: Partial<Record<LoadKind, AbortController>> = {};

/** Stops the action whose load `signal` is if another of its kind (image, model) was asked for since (the reason is
 * a `Superseded`). Only that: a changed layer or scaling while it loads is no reason to drop the image asked for. */
function stopIfNewerLoad(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

/**
 * Runs the part of an action that loads another image or model (`kind`) and shows it. What runs for the current one
 * stops at its next check the moment this begins, not once the new one has loaded (a fetch, a decode), and the
 * fetches of the load of the same kind before are aborted (`signal`, given to the loader, is this load's); a load of
 * the other kind goes on (`useModel` shows the image there is, `useImage` waits for a model). `run` calls
 * `stopIfNewerLoad(signal)` after its load: the image and the model asked for last are shown, whichever load ends
 * first. When the load fails (or the model is no image classifier) while an action was running, what that action had
 * drawn when it stopped (an explanation half drawn) is cleared: the image and model before stay, with no results.
 */
async function replacing(kind: LoadKind, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
  // besides this one: it stops where it is, and may leave half its results drawn
  const interrupted = actionsStarted - actionsDone > 1;
  const generation = ++state.generation;
  lastLoads[kind]?.abort(new Superseded(`load superseded by a newer ${kind}`));
  const load = new AbortController();
  lastLoads[kind] = load;
  try {
    await run(load.signal);
  } catch (err) {
    // unless something newer (a load, an explanation) has drawn since
    if (!(err instanceof Superseded) && interrupted && generation === state.generation) clearResults();
    throw err;
  } finally {
    if (lastLoads[kind] === load) delete lastLoads[kind];
  }
}

/** A model loaded for the load of `signal`: disposed, and the action stopped, when another was asked for meanwhile. */
function modelIfCurrent(loaded: LoadedModel, signal: AbortSignal): LoadedModel {
  if (signal.aborted) loaded.model.dispose();
  stopIfNewerLoad(signal);
  return loaded;
}

/** What a new image, model or scaling replaced: the image's input tensor, the model and its explainers. Disposed
 * once every action that ran when they were replaced has ended, since such an action may be inside a wait (a
 * repaint, a GPU read in pixel flipping) with them in hand; it stops at its next `stopIfSuperseded` check, or the
 * next step of pixel flipping. */
const retired = new RetiredObjects();

/**
 * Runs a user action; any error becomes a visible message, never an uncaught exception. On the body,
 * `data-actions-started` and `data-actions` count the actions started and finished, and `data-busy` is 'true' from
 * the moment one starts until every action started has finished (actions can overlap: a click while another
 * runs). A script that drives the page waits for `data-actions` to reach its count with `data-busy` 'false': then
 * nothing runs, whatever else started meanwhile. `data-tensors` is the number of TF.js tensors alive when the page
 * last became idle (repeating an action must not add any; the browser test checks), `data-retired` the number of
 * replaced objects still waiting for an action that may hold them when one last ended. `data-actions-superseded`
 * counts the actions that stopped because a newer image, model or explanation began (no message for those).
 */
async function act(what: string, fn: () => Promise<void> | void): Promise<void> {
  document.body.dataset.actionsStarted = String(++actionsStarted);
  const action = retired.begin();
  showBusy();
  try {
    await fn();
  } catch (err) {
    // a newer image, model or explanation took over: nothing went wrong, and nothing of this one is shown
    if (err instanceof Superseded) document.body.dataset.actionsSuperseded = String(++actionsSuperseded);
    else message('error', `${what}: ${describe(err)}`);
  } finally {
    actionsDone++;
    // a dispose that throws is shown, not thrown from here: the page would stay busy and the rest undisposed
    try {
      retired.end(action);
    } catch (err) {
      message('error', `${what}: ${describe(err)}`);
    }
    document.body.dataset.retired = String(retired.pending);
    // read while idle only: an action still running holds its intermediate tensors
    if (!running()) document.body.dataset.tensors = String(tf.memory().numTensors);
    document.body.dataset.actions = String(actionsDone);
    showBusy();
  }
}

function running(): boolean {
  return actionsDone < actionsStarted;
}

/** Shows whether an action runs: `data-busy`, the Explain button (disabled meanwhile) and the progress bar (hidden
 * when none runs). The state comes from the action counts alone, so no step of one action can mark the page idle
 * while another runs. */
function showBusy(): void {
  const busy = running();
  document.body.dataset.busy = busy ? 'true' : 'false';
  el.explain.disabled = busy || state.unexplainable !== undefined || state.x === undefined;
  if (!busy) el.progress.hidden = true;
}

/** Shows a step of long work and lets the page repaint before it runs. */
async function progress(label: string, done: number, total: number): Promise<void> {
  el.progress.hidden = false;
  el.progressLabel.textContent = `${label} (${done + 1} of ${total})`;
  el.progressBar.style.width = `${Math.round((done / total) * 100)}%`;
  await new Promise<void>((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

// ---------------------------------------------------------------------------------------------------------
// the model

function currentComposite(): CompositeName {
  return el.composite.value as CompositeName;
}

function currentScaling(): Scaling {
  return el.scaling.value as Scaling;
}

function disposeModel(): void {
  retireExplainers();
  if (state.model !== undefined) retired.retire(state.model.model);
  state.model = undefined;
}

function retireExplainers(): void {
  retired.retire(...state.explainers.values());
  state.explainers.clear();
}

/** The explainer of the current model and composite (built on first use). */
function explainer(): Explainer {
  const composite = currentComposite();
  let e = state.explainers.get(composite);
  if (e === undefined) {
    e = new Explainer(state.model!.model, composite, SCALINGS[currentScaling()]);
    state.explainers.set(composite, e);
  }
  return e;
}

async function useModel(loaded: LoadedModel): Promise<void> {
  let inputShape: [number, number, number];
  try {
    inputShape = imageInputShape(loaded.model);
  } catch (err) {
    loaded.model.dispose();
    throw err;
  }
  disposeModel();
  state.model = loaded;
  state.inputShape = inputShape;
  state.unexplainable = undefined;
  state.explanation = undefined;
  state.selected = undefined;
  state.path = [];
  state.box = undefined;
  const [h, w, c] = inputShape;
  const classes = Number(loaded.model.outputs[0]?.shape.at(-1));
  el.modelSummary.textContent = `${loaded.name}: ${h}×${w}×${c} input, ${classes} classes, ${loaded.model.layers.length} layers`;
  el.modelDefault.hidden = loaded.name === 'digits/model.json';
  if (c === 1 && currentScaling() === 'imagenet') el.scaling.value = 'unit';
  // a ViT is explained with AttnLRP unless a transformer composite is chosen (compositeNameFor of @crp/lrp)
  el.composite.value = fittingComposite(loaded.model, currentComposite());
  let e: Explainer | undefined;
  try {
    e = explainer();
  } catch (err) {
    state.unexplainable = describe(err);
    message(
      'error',
      `This model cannot be explained: ${state.unexplainable.replace(/\.+$/, '')}. Its prediction is shown; LRP needs a rule for every layer.`,
    );
  }
  fillTargets(classes);
  fillLayers(e?.summary.layers ?? []);
  if (e !== undefined && e.summary.layers.length === 0) {
    message(
      'warning',
      'This model has no conv or dense layer below its output, so it has no concepts (channels) to show; the prediction and the LRP heatmap still work.',
    );
  }
  clearResults();
  if (state.image !== undefined) await useImage(state.image);
}

function fillTargets(classes: number): void {
  el.target.replaceChildren(new Option('the predicted class', 'predicted'));
  for (let k = 0; k < classes; k++) el.target.append(new Option(`class ${k}`, String(k)));
}

function fillLayers(layers: readonly ConceptLayer[]): void {
  el.layer.replaceChildren();
  for (const l of layers)
    el.layer.append(new Option(`${l.name} (${l.kind}, ${l.channels} channels)`, l.name));
  el.layer.disabled = layers.length === 0;
  if (layers.length === 0) el.layer.append(new Option('no concept layers', ''));
  // a late conv layer: where concepts are object parts rather than edges
  const convs = layers.filter((l) => l.kind === 'conv2d');
  const preferred = (convs.at(-1) ?? layers.at(-1))?.name;
  if (preferred !== undefined) el.layer.value = preferred;
}

// ---------------------------------------------------------------------------------------------------------
// the image

async function useImage(image: LoadedImage): Promise<void> {
  if (state.model === undefined || state.inputShape === undefined) {
    state.image = image;
    return;
  }
  const { x, note } = toModelInput(image, state.inputShape, currentScaling());
  if (state.x !== undefined) retired.retire(state.x);
  state.x = x;
  state.image = image;
  state.box = undefined;
  el.box.hidden = true;
  el.imageNote.hidden = note === undefined;
  el.imageNote.textContent = note ?? '';
  const [h, w, c] = state.inputShape;
  drawRaster(el.input, inputImage(x.dataSync() as Float32Array, h, w, c));
  state.prediction = predict(state.model.model, x);
  showPrediction(state.prediction);
  clearResults();
}

function showPrediction(p: Prediction): void {
  const order = p.probabilities
    .map((v, k) => ({ v, k }))
    .sort((a, b) => b.v - a.v || a.k - b.k)
    .slice(0, 5);
  el.prediction.replaceChildren(
    ...order.map(({ v, k }, i) => {
      const li = document.createElement('li');
      if (i === 0) li.className = 'highlight';
      li.innerHTML = `<span>class ${k}</span><div class="meter"><div style="width:${(v * 100).toFixed(1)}%"></div></div><span class="num">${(v * 100).toFixed(1)}%</span>`;
      return li;
    }),
  );
}

function clearResults(): void {
  // a model without an explanation does not start one: what runs of the old results stops here
  state.generation++;
  state.explanation = undefined;
  state.selected = undefined;
  state.path = [];
  const ctx = el.heatmap.getContext('2d')!;
  ctx.clearRect(0, 0, el.heatmap.width, el.heatmap.height);
  el.heatmapCaption.textContent = '';
  el.conceptsTitle.textContent = 'Concepts';
  el.concepts.replaceChildren(
    emptyNote(
      state.unexplainable === undefined ? 'Explain to see the concepts.' : 'No explanation for this model.',
    ),
  );
  el.detail.hidden = true;
  // the Explain button follows the image and model just set
  showBusy();
}

// ---------------------------------------------------------------------------------------------------------
// explaining

function targetClass(): number {
  const v = el.target.value;
  return v === 'predicted' || v === '' ? state.prediction!.predicted : Number(v);
}

async function explain(): Promise<void> {
  if (state.x === undefined || state.model === undefined) return;
  if (state.unexplainable !== undefined) {
    throw new Error(`this model cannot be explained (${state.unexplainable})`);
  }
  const generation = ++state.generation;
  const e = explainer();
  const x = state.x;
  const target = targetClass();
  const layerName = el.layer.value;
  const layer = layerName === '' ? undefined : e.conceptLayer(layerName);
  const k = Math.min(Number(el.topK.value), layer?.channels ?? 0);
  const chunks = Math.ceil(k / 2);
  const steps = 1 + chunks;
  await progress('LRP heatmap and concept relevance', 0, steps);
  stopIfSuperseded(generation);
  const explanation = e.explainClass(x, target, layer?.name);
  state.explanation = { ...explanation, target, layer };
  // a curve shown belongs to the heatmap before: cleared until asked for again
  el.pixelFlipping.replaceChildren();
  delete el.pixelFlipping.dataset.curves;
  el.pixelFlippingSummary.textContent = '';
  // a ViT: relevance per token with the patch grid, at the input's size
  drawRaster(
    el.heatmap,
    explanation.tokens === undefined
      ? heatmapImage(explanation.heatmap)
      : tokenHeatmapImage(explanation.tokens, explanation.heatmap),
  );
  el.heatmapCaption.textContent = `class ${target}, ${COMPOSITES[currentComposite()][0]}${explanation.tokens === undefined ? '' : ', per token (patch grid)'}`;
  if (layer === undefined) {
    el.conceptsTitle.textContent = 'Concepts';
    el.concepts.replaceChildren(emptyNote('This model has no concept layer.'));
    return;
  }
  el.conceptsTitle.textContent = `Top ${k} of the ${layer.channels} concepts of ${layer.name} for class ${target}`;
  const top = explanation.concepts.slice(0, k);
  const scale = Math.max(...top.map((c) => Math.abs(c.share)), 1e-12);
  const cards = top.map((c) =>
    conceptCard(c.channel, c.share, scale, () => void act('Concept', () => select(c.channel))),
  );
  el.concepts.replaceChildren(...cards.map((c) => c.root));
  for (let i = 0; i < chunks; i++) {
    await progress(`Conditional heatmaps of ${layer.name}`, 1 + i, steps);
    stopIfSuperseded(generation);
    const part = top.slice(i * 2, i * 2 + 2);
    const maps = e.conditionalHeatmaps(
      x,
      part.map((c) => ({ y: [target], [layer.name]: [c.channel] })),
    );
    maps.forEach((m, j) => {
      drawRaster(cards[i * 2 + j]!.canvas, conceptImage(m));
    });
  }
  if (state.box !== undefined) await select(state.selected ?? top[0]!.channel);
}

/** The pixel-flipping curve of the current heatmap beside a random map's, computed on the loaded model when asked
 * (it costs a forward pass per step and map, more than the explanation itself). */
async function showPixelFlipping(): Promise<void> {
  const e = state.explanation;
  if (state.x === undefined || state.model === undefined || e === undefined) {
    throw new Error('explain an image first: pixel flipping removes what its heatmap calls relevant');
  }
  const generation = state.generation;
  const { heatmap, target } = e;
  const x = state.x;
  await progress('Pixel flipping: the heatmap beside a random map', 0, 1);
  stopIfSuperseded(generation);
  const composite = currentComposite();
  const curves = await pixelFlippingCurves(state.model!.model, x, target, heatmap, composite, {
    // after each batch of inputs scored (the page waits on a GPU read between them): stop if a newer image or
    // model began
    onStep: (method, done, total) => {
      stopIfSuperseded(generation);
      el.progressLabel.textContent = `Pixel flipping: the ${method === composite ? 'heatmap' : method} (${done} of ${total} inputs)`;
      el.progressBar.style.width = `${Math.round((done / total) * 100)}%`;
    },
  });
  // narrower on a narrow page: scaled down to fit, its labels would be too small to read
  const svg = await flippingChart(curves, Math.max(180, Math.min(360, el.pixelFlipping.clientWidth - 90)));
  stopIfSuperseded(generation);
  el.pixelFlipping.innerHTML = svg;
  // the numbers behind the chart, for whoever reads the page programmatically (the browser test does)
  el.pixelFlipping.dataset.curves = JSON.stringify(curves);
  const [ours, random] = curves as [FlippingCurve, FlippingCurve];
  const verdict =
    ours.auc < random.auc
      ? 'falls faster than the random map: the model depends on what the heatmap shows'
      : 'does not fall faster than the random map: for this image the heatmap explains no more than chance';
  el.pixelFlippingSummary.textContent = `Area ${ours.auc.toFixed(3)} for ${composite}, ${random.auc.toFixed(3)} for the random map (class ${target}, ${ours.curve.length} steps): the heatmap's curve ${verdict}.`;
}

function emptyNote(text: string): HTMLElement {
  const p = document.createElement('p');
  p.className = 'empty';
  p.textContent = text;
  return p;
}

/** A concept's card: heatmap, index, share (the bar relative to `scale`, the largest share shown); `layer` (a
 * sub-concept of one branch of a join) is kept in `data-layer`. */
function conceptCard(
  channel: number,
  share: number,
  scale: number,
  onClick: (() => void) | undefined,
  layer?: string,
): { root: HTMLElement; canvas: HTMLCanvasElement } {
  const root = document.createElement(onClick ? 'button' : 'div');
  root.className = 'concept';
  root.dataset.channel = String(channel);
  if (layer !== undefined) root.dataset.layer = layer;
  if (onClick) {
    (root as HTMLButtonElement).type = 'button';
    root.addEventListener('click', onClick);
  }
  const canvas = document.createElement('canvas');
  canvas.className = 'pixel';
  const text = document.createElement('div');
  text.className = 'label';
  text.innerHTML = `<span>#${channel}</span><b>${(share * 100).toFixed(1)}%</b>`;
  const meter = document.createElement('div');
  meter.className = `meter ${share < 0 ? 'negative' : 'positive'}`;
  meter.innerHTML = `<div style="width:${Math.min(100, (Math.abs(share) / scale) * 100).toFixed(1)}%"></div>`;
  root.append(canvas, text, meter);
  return { root, canvas };
}

async function select(channel: number): Promise<void> {
  const ex = state.explanation;
  if (ex === undefined || ex.layer === undefined || state.x === undefined) return;
  const generation = state.generation;
  const layer = ex.layer;
  state.selected = channel;
  // a new concept starts a new path; the same one (a region drawn) keeps where the user clicked through to
  if (state.path[0]?.layer !== layer.name || state.path[0]?.concept !== channel) {
    state.path = [{ layer: layer.name, concept: channel }];
  }
  for (const card of el.concepts.querySelectorAll<HTMLElement>('.concept')) {
    card.classList.toggle('selected', card.dataset.channel === String(channel));
  }
  const score = ex.concepts.find((c) => c.channel === channel)!;
  el.detail.hidden = false;
  el.detailTitle.textContent = `Concept #${channel} of ${layer.name}: ${(score.share * 100).toFixed(1)}% of the layer's relevance for class ${ex.target}`;
  await showDecomposition();
  stopIfSuperseded(generation);
  if (state.box === undefined) {
    el.region.replaceChildren(
      emptyNote(
        `Draw a box on the input image: the page then shows how much of concept #${channel}'s relevance lies inside it, and which concepts of ${layer.name} are most relevant there.`,
      ),
    );
    return;
  }
  await progress('Region relevance (adjoint pass)', 0, 1);
  stopIfSuperseded(generation);
  showRegion(channel);
}

/** `layer #concept`, how a step of the path is named on the page. */
function stepName(s: ConceptStep): string {
  return `${s.layer} #${s.concept}`;
}

/** The breadcrumb of the decomposition path: each step above the current one goes back up to it. */
function showPath(path: readonly ConceptStep[]): void {
  el.decompositionPath.hidden = path.length < 2;
  el.decompositionPath.replaceChildren(
    ...path.flatMap((s, i) => {
      const last = i === path.length - 1;
      const item = document.createElement(last ? 'span' : 'button');
      item.className = 'crumb';
      item.textContent = stepName(s);
      item.dataset.level = String(i);
      if (last) item.setAttribute('aria-current', 'step');
      else {
        (item as HTMLButtonElement).type = 'button';
        item.title = `Back to the decomposition of ${stepName(s)}`;
        item.addEventListener('click', () => {
          state.path = state.path.slice(0, i + 1);
          void act('Decomposition', showDecomposition);
        });
      }
      if (i === 0) return [item];
      const sep = document.createElement('span');
      sep.className = 'sep';
      sep.textContent = '›';
      sep.setAttribute('aria-hidden', 'true');
      return [sep, item];
    }),
  );
}

/**
 * The decomposition of the last concept of `state.path` into the layers below (one group per branch at a join), each
 * sub-concept with its share and heatmap; a sub-concept with layers below is a button that decomposes it in turn.
 * Below the first level, the concept itself is shown first: its relevance (what reaches it through the path) and its
 * heatmap.
 */
async function showDecomposition(): Promise<void> {
  const ex = state.explanation;
  if (ex === undefined || state.x === undefined || state.path.length === 0) return;
  const generation = state.generation;
  const e = explainer();
  const path = [...state.path];
  const node = path.at(-1)!;
  const below = e.conceptLayersBelow(node.layer);
  const width = 5;
  const deep = path.length > 1;
  showPath(path);
  el.decompositionNode.replaceChildren();
  el.decompositionNode.hidden = !deep;
  if (below.length === 0) {
    el.decompositionTitle.textContent = 'Decomposition';
    el.decompositionHelp.textContent = `${node.layer} is the lowest concept layer: there is no layer below to decompose ${stepName(node)} into.`;
    el.decomposition.replaceChildren();
    el.decomposition.classList.remove('branches');
  }
  const steps = (below.length === 0 ? 0 : 2) + (deep ? 1 : 0);
  let done = 0;
  const x = state.x;
  if (deep) {
    // the concept as a node of the path: its heatmap and its relevance (the sum of its heatmap where rules conserve)
    await progress(`Heatmap of ${stepName(node)}`, done++, steps);
    stopIfSuperseded(generation);
    showNode(path, e.pathHeatmap(x, ex.target, path));
  }
  if (below.length === 0) return;
  const joins = below.length > 1;
  el.decompositionTitle.textContent = `Decomposition into ${below.join(' and ')}`;
  el.decompositionHelp.textContent = joins
    ? `${node.layer} joins ${below.length} branches. The sub-concepts of each branch that ${stepName(node)} draws its relevance from (up to ${width} per branch), with their share of it (where the rules conserve, the shares of all branches add up to 100%) and their heatmaps: the relevance that reaches each through ${stepName(node)}. Click one to decompose it in turn.`
    : `The sub-concepts of ${below[0]} that ${stepName(node)} draws its relevance from, with their share of it and their heatmaps: the relevance that reaches each through ${path.map(stepName).join(' › ')}. Click one to decompose it in turn.`;
  await progress(`Decomposing ${stepName(node)}`, done++, steps);
  stopIfSuperseded(generation);
  const subs = e.subConcepts(x, ex.target, path, width);
  const scale = Math.max(...subs.map((n) => Math.abs(n.share)), 1e-12);
  const cards = subs.map((n) => {
    const open = e.conceptLayersBelow(n.layer).length > 0;
    const card = conceptCard(
      n.concept,
      n.share,
      scale,
      open
        ? () => {
            state.path = [...path, { layer: n.layer, concept: n.concept }];
            void act('Decomposition', showDecomposition);
          }
        : undefined,
      n.layer,
    );
    card.root.title = open
      ? `${stepName(n)}: click to decompose it`
      : `${stepName(n)}: the lowest concept layer (only the input lies below)`;
    return card;
  });
  el.decomposition.classList.toggle('branches', joins);
  if (joins) {
    // one group per branch, headed by its layer (PyTorch's name), side by side where the page is wide enough
    el.decomposition.style.setProperty('--branches', String(below.length));
    el.decomposition.replaceChildren(
      ...below.map((b) =>
        branchGroup(
          b,
          cards.filter((_, i) => subs[i]!.layer === b),
        ),
      ),
    );
  } else el.decomposition.replaceChildren(...cards.map((c) => c.root));
  await progress('Heatmaps of the sub-concepts', done++, steps);
  stopIfSuperseded(generation);
  const maps = e.subConceptHeatmaps(x, ex.target, path, subs);
  maps.forEach((m, i) => {
    cards[i]!.root.dataset.heatmapSum = String(sumOf(m.heatmap.data));
    drawRaster(cards[i]!.canvas, conceptImage(m));
  });
}

/** Below the first level, the concept being decomposed: its heatmap through the path and what that means. */
function showNode(path: readonly ConceptStep[], map: ConditionalHeatmap): void {
  const node = path.at(-1)!;
  const card = document.createElement('div');
  card.className = 'concept';
  card.dataset.layer = node.layer;
  card.dataset.channel = String(node.concept);
  card.dataset.heatmapSum = String(sumOf(map.heatmap.data));
  const canvas = document.createElement('canvas');
  canvas.className = 'pixel';
  const label = document.createElement('div');
  label.className = 'label';
  label.textContent = stepName(node);
  card.append(canvas, label);
  drawRaster(canvas, conceptImage(map));
  const text = document.createElement('p');
  text.className = 'help';
  text.textContent = `${stepName(node)} as reached through ${path
    .slice(0, -1)
    .map(stepName)
    .join(' › ')}: its heatmap is the relevance that reaches it through that path, taken on to the input.`;
  el.decompositionNode.replaceChildren(card, text);
}

/** The sub-concepts of one branch of a join, headed by the branch's layer. */
function branchGroup(layer: string, cards: readonly { root: HTMLElement }[]): HTMLElement {
  const group = document.createElement('div');
  group.className = 'branch';
  group.dataset.layer = layer;
  const heading = document.createElement('h5');
  heading.textContent = layer;
  const grid = document.createElement('div');
  grid.className = 'subconcepts';
  grid.append(
    ...(cards.length > 0 ? cards.map((c) => c.root) : [emptyNote('no relevance from this branch')]),
  );
  group.append(heading, grid);
  return group;
}

/** The sum of a heatmap: the relevance that reached the input (kept on each card for whoever reads the page
 * programmatically; the browser test checks that the branches' sums add up to their concept's). */
function sumOf(values: Float32Array): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function showRegion(channel: number): void {
  const ex = state.explanation!;
  const layer = ex.layer!;
  const box = state.box!;
  const r = explainer().region(state.x!, ex.target, layer.name, box);
  const inside = r.layers[layer.name]!;
  const conceptInside = inside.relevance[inside.concepts.indexOf(channel)]!;
  const conceptTotal = ex.concepts.find((c) => c.channel === channel)!.relevance;
  const percent = (part: number, whole: number) =>
    Math.abs(whole) > 1e-12 ? `${((part / whole) * 100).toFixed(0)}%` : '–';
  const caption = document.createElement('p');
  caption.className = 'help';
  caption.textContent = `Box at x ${box.x}, y ${box.y}, ${box.width}×${box.height} pixels: relevance inside it (the sum of the heatmap over the box), computed for every concept of ${layer.name} at once through the adjoint pass.`;
  const table = document.createElement('table');
  table.className = 'region-table';
  table.innerHTML = `
    <thead><tr><th></th><th>in the box</th><th>everywhere</th><th>share</th></tr></thead>
    <tbody>
      <tr data-figure="class"><th>class ${ex.target}</th><td>${r.total.toFixed(3)}</td><td>${ex.total.toFixed(3)}</td><td>${percent(r.total, ex.total)}</td></tr>
      <tr data-figure="concept" class="highlight"><th>concept #${channel}</th><td>${conceptInside.toFixed(3)}</td><td>${conceptTotal.toFixed(3)}</td><td>${percent(conceptInside, conceptTotal)}</td></tr>
    </tbody>`;
  const ranked = inside.concepts
    .map((c, i) => ({ c, v: inside.relevance[i]! }))
    .sort((a, b) => b.v - a.v || a.c - b.c)
    .slice(0, 5);
  const max = Math.max(...ranked.map((x) => Math.abs(x.v)), 1e-12);
  const heading = document.createElement('h4');
  heading.textContent = `Concepts of ${layer.name} most relevant inside the box`;
  const list = document.createElement('ol');
  list.className = 'bars';
  for (const { c, v } of ranked) {
    const li = document.createElement('li');
    if (c === channel) li.className = 'highlight';
    li.innerHTML = `<span>#${c}</span><div class="meter ${v < 0 ? 'negative' : 'positive'}"><div style="width:${((Math.abs(v) / max) * 100).toFixed(1)}%"></div></div><span class="num">${v.toFixed(3)}</span>`;
    list.append(li);
  }
  el.region.replaceChildren(caption, table, heading, list);
}

// ---------------------------------------------------------------------------------------------------------
// drawing a region on the input

function setupBoxDrawing(): void {
  let start: { x: number; y: number } | undefined;
  const pixel = (event: PointerEvent) => {
    const rect = el.drawSurface.getBoundingClientRect();
    const [h, w] = state.inputShape ?? [1, 1];
    return {
      x: Math.min(w - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * w))),
      y: Math.min(h - 1, Math.max(0, Math.floor(((event.clientY - rect.top) / rect.height) * h))),
    };
  };
  const show = (box: Box | undefined) => {
    el.box.hidden = box === undefined;
    if (box === undefined) return;
    const [h, w] = state.inputShape ?? [1, 1];
    el.box.style.left = `${(box.x / w) * 100}%`;
    el.box.style.top = `${(box.y / h) * 100}%`;
    el.box.style.width = `${(box.width / w) * 100}%`;
    el.box.style.height = `${(box.height / h) * 100}%`;
  };
  const boxOf = (a: { x: number; y: number }, b: { x: number; y: number }): Box => ({
    x: Math.min(a.x, b.x),
    y: Math.min(a.y, b.y),
    width: Math.abs(a.x - b.x) + 1,
    height: Math.abs(a.y - b.y) + 1,
  });
  el.drawSurface.addEventListener('pointerdown', (event) => {
    if (state.x === undefined) return;
    start = pixel(event);
    el.drawSurface.setPointerCapture(event.pointerId);
    show(boxOf(start, start));
  });
  el.drawSurface.addEventListener('pointermove', (event) => {
    if (start !== undefined) show(boxOf(start, pixel(event)));
  });
  el.drawSurface.addEventListener('pointerup', (event) => {
    if (start === undefined) return;
    const end = pixel(event);
    const box = boxOf(start, end);
    start = undefined;
    // a click without dragging removes the box
    if (box.width === 1 && box.height === 1) {
      state.box = undefined;
      show(undefined);
      if (state.selected !== undefined) void act('Region', () => select(state.selected!));
      return;
    }
    state.box = box;
    show(box);
    void act('Region relevance', async () => {
      if (state.explanation === undefined) await explain();
      const ex = state.explanation;
      if (ex?.layer === undefined) return;
      await select(state.selected ?? ex.concepts[0]!.channel);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// samples and start

function sampleUrl(file: string): string {
  return `${import.meta.env.BASE_URL}digits/${file}`;
}

/** Shows a button for each sample digit; the file of the first, which the page opens with. */
async function loadSamples(): Promise<string | undefined> {
  const load = imageLoad();
  const response = await load.fetch(SAMPLES);
  if (!response.ok) return undefined;
  const index = (await load.step(response.json())) as { samples: { file: string; label: number }[] };
  const buttons = index.samples.map((s) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.title = `digit ${s.label} (${s.file})`;
    button.dataset.file = s.file;
    const img = document.createElement('img');
    img.src = sampleUrl(s.file);
    img.alt = `digit ${s.label}`;
    button.append(img);
    button.addEventListener('click', () =>
      act('Image', () =>
        replacing('image', async (signal) => {
          clearMessages();
          const image = await fetchImage(img.src, imageLoad(signal));
          stopIfNewerLoad(signal);
          // marked once it is shown: a digit that failed to load is not the one on the page
          markSample(s.file);
          await useImage(image);
          await explain();
        }),
      ),
    );
    return button;
  });
  el.samples.replaceChildren(...buttons);
  return index.samples[0]?.file;
}

function markSample(file: string | undefined): void {
  for (const b of el.samples.querySelectorAll<HTMLElement>('button')) {
    b.classList.toggle('selected', b.dataset.file === file);
  }
}

function setupControls(): void {
  for (const name of COMPOSITE_NAMES) {
    const option = new Option(COMPOSITES[name][0], name);
    option.title = COMPOSITES[name][1];
    el.composite.append(option);
  }
  for (const [key, s] of Object.entries(SCALINGS)) el.scaling.append(new Option(s.label, key));
  el.composite.value = params.get('composite') ?? 'epsilon_plus_flat';

  el.modelFiles.addEventListener('change', () =>
    act('Model', async () => {
      clearMessages();
      const files = [...(el.modelFiles.files ?? [])];
      el.modelFiles.value = '';
      if (files.length === 0) return;
      await replacing('model', async (signal) => {
        await useModel(modelIfCurrent(await loadModelFromFiles(files), signal));
        await explainIfPossible();
      });
    }),
  );
  el.modelUrlForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void act('Model', async () => {
      clearMessages();
      const url = el.modelUrl.value.trim();
      if (url === '') throw new Error('give the URL of a model.json');
      await replacing('model', async (signal) => {
        await useModel(modelIfCurrent(await loadModelFromUrl(url, modelLoad(signal)), signal));
        await explainIfPossible();
      });
    });
  });
  el.modelDefault.addEventListener('click', () =>
    act('Model', () =>
      replacing('model', async (signal) => {
        clearMessages();
        await useModel(modelIfCurrent(await loadModelFromUrl(DEFAULT_MODEL, modelLoad(signal)), signal));
        await explainIfPossible();
      }),
    ),
  );
  el.imageFile.addEventListener('change', () =>
    act('Image', async () => {
      clearMessages();
      const file = el.imageFile.files?.[0];
      el.imageFile.value = '';
      if (file === undefined) return;
      await replacing('image', async (signal) => {
        const image = await decodeImageBlob(file, file.name);
        stopIfNewerLoad(signal);
        markSample(undefined);
        await useImage(image);
        await explainIfPossible();
      });
    }),
  );
  el.scaling.addEventListener('change', () =>
    act('Input scaling', async () => {
      // the z-box rule's bounds follow the scaling: explainers are rebuilt
      retireExplainers();
      if (state.image !== undefined) await useImage(state.image);
      await explainIfPossible();
    }),
  );
  for (const select of [el.composite, el.layer, el.target, el.topK]) {
    select.addEventListener('change', () => act('Explain', explainIfPossible));
  }
  el.pixelFlippingRun.addEventListener('click', () => void act('Pixel flipping', showPixelFlipping));
  el.explain.addEventListener('click', () =>
    act('Explain', async () => {
      clearMessages();
      await explain();
    }),
  );
  setupBoxDrawing();
}

async function explainIfPossible(): Promise<void> {
  if (state.unexplainable === undefined && state.x !== undefined) await explain();
}

async function start(): Promise<void> {
  el.progress.hidden = false;
  el.progressLabel.textContent = 'Starting TF.js…';
  (document.getElementById('tfjs-version') as HTMLElement).textContent = tf.version_core;
  const preferred = params.get('backend') as BackendName | null;
  const order =
    preferred !== null && BACKENDS.includes(preferred)
      ? [preferred, ...BACKENDS.filter((b) => b !== preferred)]
      : BACKENDS;
  const backend = await startBackend(order);
  el.backend.textContent =
    backend.name === 'webgl' ? 'WebGL' : backend.name === 'wasm' ? 'WebAssembly' : 'CPU';
  el.backend.title = `TF.js backend: ${backend.name}`;
  document.body.dataset.inPlaceSlice = String(backend.inPlaceSlice);
  if (backend.notes.length > 0 && preferred === null) {
    message('info', `Computing on ${backend.name}: ${backend.notes.join('; ')}.`);
  }
  setupControls();
  if (limits.problem !== undefined) message('error', limits.problem);
  // the buttons are no part of the start's load: a click that supersedes it does not leave the page without them
  const samples = loadSamples().catch(() => undefined);
  const imageUrl = params.get('image');
  // the model and the image the page opens with load like any later model and image: a model asked for meanwhile
  // replaces the start's model (its image is explained with the new one), a digit the start's image (explained
  // once the start's model is there)
  const loads = await Promise.allSettled([
    replacing('model', async (signal) => {
      el.progressLabel.textContent = 'Loading the model…';
      const url = params.get('model') ?? DEFAULT_MODEL;
      await useModel(modelIfCurrent(await loadModelFromUrl(url, modelLoad(signal)), signal));
      // the address's target and layer are the start's model's: a model asked for instead has its own
      useAddressTargetAndLayer();
    }),
    replacing('image', async (signal) => {
      const file = imageUrl === null ? await samples : undefined;
      const url = imageUrl ?? (file === undefined ? undefined : sampleUrl(file));
      if (url === undefined) return;
      let image: LoadedImage;
      try {
        image = await fetchImage(url, imageLoad(signal));
      } catch (err) {
        // a first digit that fails to load is left out without a message; an image the address names is not
        if (imageUrl !== null || err instanceof Superseded) throw err;
        return;
      }
      stopIfNewerLoad(signal);
      markSample(file);
      await useImage(image);
    }),
  ]);
  const failed = loads.flatMap((l) =>
    l.status === 'rejected' && !(l.reason instanceof Superseded) ? [l.reason as unknown] : [],
  );
  // the model's failure is the start's; the image's, when both failed, is shown beside it
  for (const err of failed.slice(1)) message('error', `Start: ${describe(err)}`);
  if (failed.length > 0) throw failed[0];
  // both superseded: what was asked for instead shows and explains itself
  if (loads.every((l) => l.status === 'rejected'))
    throw new Superseded('start superseded by a newer image and model');
  await explainIfPossible();
}

/** The `target` and `layer` the address names, for the model the page opens with. */
function useAddressTargetAndLayer(): void {
  const target = params.get('target');
  if (target !== null) el.target.value = target;
  const layer = params.get('layer');
  if (layer !== null && state.unexplainable === undefined) {
    // a named layer must be one with concepts: say why not, and go on with the default layer
    try {
      explainer().conceptLayer(layer);
      el.layer.value = layer;
    } catch (err) {
      message(
        'error',
        `No concepts for the layer in the address: ${describe(err)}. Showing ${el.layer.value || 'no layer'} instead.`,
      );
    }
  }
}

// a last line of defence: nothing may fail silently or leave a blank page
window.addEventListener('error', (event) => {
  message('error', `Unexpected error: ${describe(event.error ?? event.message)}`);
  event.preventDefault();
});
window.addEventListener('unhandledrejection', (event) => {
  message('error', `Unexpected error: ${describe(event.reason)}`);
  event.preventDefault();
});

void act('Start', start).then(() => {
  document.body.dataset.ready = 'true';
});
