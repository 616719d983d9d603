import { CrpError } from '@crp/common';
import { exclusiveFloat32, readFloat32, writeFloat32 } from '@crp/lrp/internal';
import * as tf from '@tensorflow/tfjs-core';

/** Hyper-parameters of {@link Lamb}. */
export interface LambConfig {
  /** Step size; default 0.001. */
  learningRate?: number;
  /** Decay of the first moment; default 0.9. */
  beta1?: number;
  /** Decay of the second moment; default 0.999. */
  beta2?: number;
  /** Added to the square root of the second moment; default 1e-6. */
  epsilon?: number;
  /** Decoupled weight decay λ added to the Adam direction (`r + λw`); default 0. */
  weightDecay?: number;
  /**
   * Give variables of rank 0 or 1 (biases, batch-norm scales and offsets) no weight decay and no layer adaptation
   * (trust ratio 1), as BERT's LAMB does for biases and norms. Default false.
   */
  excludeVectors?: boolean;
  /**
   * Where the moments m and v live and the update is computed. `'backend'` (default): as tensors of the TF.js
   * backend, each variable's update in a few tensor operations. `'js'`: as Float32Arrays in JavaScript memory,
   * the update computed in JavaScript, variable by variable, reading weights and gradients in place (on wasm: in its
   * heap, without a copy) and writing the new weights as one new tensor; the backend then never holds the two
   * moments (8 bytes per parameter) nor an update's temporaries (several copies of the largest variable). For
   * models whose training does not fit the backend's memory, e.g. a torchvision VGG (129M parameters) in wasm's
   * 4 GiB heap. Both give the same steps up to float rounding.
   */
  moments?: 'backend' | 'js';
}

interface Moments {
  m: tf.Variable;
  v: tf.Variable;
}

interface HostMoments {
  m: Float32Array;
  v: Float32Array;
  shape: number[];
}

/**
 * LAMB, the layer-wise adaptive large-batch optimiser of You et al. (2020, "Large Batch Optimization for Deep
 * Learning: Training BERT in 76 minutes", Algorithm 2), as a `tf.Optimizer`: usable with `optimizer.minimize`,
 * `model.compile({ optimizer })` / `model.fit`, and serialisable (registered as `'Lamb'`, so a model saved with
 * `includeOptimizer: true` loads with it). For each variable w with gradient g at step t:
 *
 * ```text
 * m = β1 m + (1 - β1) g          v = β2 v + (1 - β2) g²
 * r = (m / (1 - β1^t)) / (sqrt(v / (1 - β2^t)) + ε)
 * u = r + λ w
 * trust = ||w|| / ||u||   (1 when ||w|| = 0 or ||u|| = 0)
 * w = w - lr · trust · u
 * ```
 *
 * Moments are kept per variable name; `getWeights`/`setWeights` save and restore them with the step count
 * (names `<variable>/m`, `<variable>/v`). With `moments: 'js'` (see {@link LambConfig.moments}) they are
 * Float32Arrays; `getWeights` then lends tensors made from them, valid until the next step, `getWeights` or
 * `dispose`.
 */
export class Lamb extends tf.Optimizer {
  /** The name under which the class is registered for serialisation. */
  static get className(): string {
    return 'Lamb';
  }

  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  readonly excludeVectors: boolean;
  /** Where the moments live (see {@link LambConfig.moments}). */
  readonly momentsIn: 'backend' | 'js';
  private moments = new Map<string, Moments>();
  private hostMoments = new Map<string, HostMoments>();
  /** Tensors lent by getWeights in 'js' mode, released at the next step, getWeights or dispose. */
  private lent: tf.Tensor[] = [];
  private scratchU: Float32Array | undefined;

  /** @throws CrpError `invalid-argument` for hyper-parameters outside their ranges. */
  constructor(config: LambConfig = {}) {
    super();
    this.learningRate = config.learningRate ?? 1e-3;
    this.beta1 = config.beta1 ?? 0.9;
    this.beta2 = config.beta2 ?? 0.999;
    this.epsilon = config.epsilon ?? 1e-6;
    this.weightDecay = config.weightDecay ?? 0;
    this.excludeVectors = config.excludeVectors ?? false;
    this.momentsIn = config.moments ?? 'backend';
    const check = (name: string, value: number, ok: boolean, valid: string) => {
      if (!ok || !Number.isFinite(value)) {
        throw new CrpError('invalid-argument', `Lamb ${name} is ${value}; valid: ${valid}`);
      }
    };
    check('learningRate', this.learningRate, this.learningRate > 0, 'a number > 0');
    check('beta1', this.beta1, this.beta1 >= 0 && this.beta1 < 1, '0 <= beta1 < 1');
    check('beta2', this.beta2, this.beta2 >= 0 && this.beta2 < 1, '0 <= beta2 < 1');
    check('epsilon', this.epsilon, this.epsilon >= 0, 'a number >= 0');
    check('weightDecay', this.weightDecay, this.weightDecay >= 0, 'a number >= 0');
    if (this.momentsIn !== 'backend' && this.momentsIn !== 'js') {
      throw new CrpError(
        'invalid-argument',
        `Lamb moments is '${String(this.momentsIn)}'; valid: 'backend', 'js'`,
      );
    }
  }

  override applyGradients(
    variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[],
  ): void {
    const pairs: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor])
      : Object.entries(variableGradients);
    const t = this.iterations + 1; // the getter: iterations_ starts undefined
    const variables = tf.engine().registeredVariables;
    this.releaseLent();
    for (const [name, gradient] of pairs) {
      if (gradient == null) continue;
      const w = variables[name];
      if (w === undefined) {
        throw new CrpError('invalid-argument', `Lamb got a gradient for '${name}', which is not a variable`);
      }
      if (this.momentsIn === 'js') this.stepInJs(name, w, gradient, t);
      else this.stepOnBackend(name, w, gradient, t);
    }
    this.incrementIterations();
  }

  /** One variable's step as tensor operations; its temporaries end with it (not with the whole step). */
  private stepOnBackend(name: string, w: tf.Variable, gradient: tf.Tensor, t: number): void {
    const correction1 = 1 - this.beta1 ** t;
    const correction2 = 1 - this.beta2 ** t;
    let state = this.moments.get(name);
    if (state === undefined) {
      state = {
        m: tf.tidy(() => tf.zerosLike(w).variable(false)),
        v: tf.tidy(() => tf.zerosLike(w).variable(false)),
      };
      this.moments.set(name, state);
    }
    const { m: mVar, v: vVar } = state;
    tf.tidy(() => {
      const m = tf.add(tf.mul(mVar, this.beta1), tf.mul(gradient, 1 - this.beta1));
      const v = tf.add(tf.mul(vVar, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
      mVar.assign(m);
      vVar.assign(v);
      const r = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), this.epsilon));
      const plain = this.excludeVectors && w.rank <= 1;
      const u = this.weightDecay > 0 && !plain ? tf.add(r, tf.mul(w, this.weightDecay)) : r;
      let step: tf.Tensor = tf.mul(u, this.learningRate);
      if (!plain) {
        const wNorm = tf.norm(w);
        const uNorm = tf.norm(u);
        const usable = tf.logicalAnd(tf.greater(wNorm, 0), tf.greater(uNorm, 0));
        const trust = tf.where(
          usable,
          tf.div(wNorm, tf.where(usable, uNorm, tf.onesLike(uNorm))),
          tf.onesLike(wNorm),
        );
        step = tf.mul(step, trust);
      }
      w.assign(tf.sub(w, step));
    });
  }

  /**
   * One variable's step in JavaScript. The first pass updates m and v from the gradient, computes u and sums ||w||²
   * and ||u||²; u is kept in the gradient's own memory when nothing else uses it (wasm), so that the second pass,
   * `w - lr·trust·u`, writes the new weights there too and the variable takes that memory: the step allocates
   * nothing on the backend. Elsewhere u goes to a JavaScript array and the new weights to a new tensor.
   */
  private stepInJs(name: string, w: tf.Variable, gradient: tf.Tensor, t: number): void {
    if (w.dtype !== 'float32' || gradient.dtype !== 'float32') {
      throw new CrpError(
        'invalid-argument',
        `Lamb with moments 'js' takes float32 variables; '${name}' is ${w.dtype}`,
      );
    }
    const n = w.size;
    let state = this.hostMoments.get(name);
    if (state === undefined) {
      state = { m: new Float32Array(n), v: new Float32Array(n), shape: [...w.shape] };
      this.hostMoments.set(name, state);
    }
    const { m, v } = state;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const a1 = 1 - b1;
    const a2 = 1 - b2;
    // m̂ / (sqrt(v̂) + ε) = (m / c1) / (sqrt(v) / sqrt(c2) + ε)
    const c1 = 1 / (1 - b1 ** t);
    const c2 = 1 / Math.sqrt(1 - b2 ** t);
    const eps = this.epsilon;
    const plain = this.excludeVectors && w.rank <= 1;
    const wd = plain ? 0 : this.weightDecay;
    const own = exclusiveFloat32(gradient);
    const g = own ?? readFloat32(gradient);
    const u = own ?? this.scratch(n);
    let wv = readFloat32(w);
    let wSq = 0;
    let uSq = 0;
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      const mi = Math.fround(b1 * m[i]! + a1 * gi);
      const vi = Math.fround(b2 * v[i]! + a2 * gi * gi);
      m[i] = mi;
      v[i] = vi;
      const wi = wv[i]!;
      const ui = (mi * c1) / (Math.sqrt(vi) * c2 + eps) + wd * wi;
      u[i] = ui;
      uSq += ui * ui;
      wSq += wi * wi;
    }
    const trust = plain || wSq === 0 || uSq === 0 ? 1 : Math.sqrt(wSq) / Math.sqrt(uSq);
    const rate = this.learningRate * trust;
    if (own !== undefined) {
      for (let i = 0; i < n; i++) own[i] = wv[i]! - rate * own[i]!;
      w.assign(gradient);
      gradient.dispose();
      return;
    }
    // the gradient is spent: its memory can take the new weights
    gradient.dispose();
    const next = writeFloat32([...w.shape], (out) => {
      wv = readFloat32(w); // the allocation may have moved the heap
      for (let i = 0; i < n; i++) out[i] = wv[i]! - rate * u[i]!;
    });
    w.assign(next);
    next.dispose();
  }

  /** A JavaScript array of at least n floats for u, kept for the next steps. */
  private scratch(n: number): Float32Array {
    if (this.scratchU === undefined || this.scratchU.length < n) this.scratchU = new Float32Array(n);
    return this.scratchU;
  }

  private releaseLent(): void {
    tf.dispose(this.lent);
    this.lent = [];
  }

  override dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
    this.hostMoments.clear();
    this.scratchU = undefined;
    this.releaseLent();
  }

  /**
   * The moments as Float32Arrays with their variable names and shapes, without tensors (`moments: 'js'` only; the
   * arrays are the optimiser's own: read, do not change). Checkpoints use it to save 1 GB of moments without
   * putting them into the backend.
   */
  momentArrays(): { name: string; shape: number[]; values: Float32Array }[] | undefined {
    if (this.momentsIn !== 'js') return undefined;
    const names = [...this.hostMoments.keys()];
    return [
      ...names.map((n) => ({
        name: `${n}/m`,
        shape: this.hostMoments.get(n)!.shape,
        values: this.hostMoments.get(n)!.m,
      })),
      ...names.map((n) => ({
        name: `${n}/v`,
        shape: this.hostMoments.get(n)!.shape,
        values: this.hostMoments.get(n)!.v,
      })),
    ];
  }

  /**
   * Puts moments saved by {@link momentArrays} back, with the step count (`moments: 'js'` only; the arrays become
   * the optimiser's own).
   *
   * @throws CrpError `invalid-argument` for names that are not `<variable>/m` / `<variable>/v` pairs.
   */
  setMomentArrays(
    arrays: { name: string; shape: number[]; values: Float32Array }[],
    iterations: number,
  ): void {
    if (this.momentsIn !== 'js') {
      throw new CrpError('invalid-argument', "Lamb.setMomentArrays needs moments: 'js'; use setWeights");
    }
    const pairs = pairMoments(arrays.map((a) => ({ name: a.name, value: a })));
    this.dispose();
    for (const [name, { m, v }] of pairs)
      this.hostMoments.set(name, { m: m.values, v: v.values, shape: m.shape });
    this.iterations_ = iterations;
  }

  override async getWeights(): Promise<{ name: string; tensor: tf.Tensor }[]> {
    if (this.momentsIn === 'js') {
      this.releaseLent();
      const lent = this.momentArrays()!.map(({ name, shape, values }) => ({
        name,
        tensor: tf.tensor(values.slice(), shape, 'float32'),
      }));
      this.lent = lent.map((x) => x.tensor);
      const iterations = await this.saveIterations();
      this.lent.push(iterations.tensor);
      return [iterations, ...lent];
    }
    const names = [...this.moments.keys()];
    return [
      await this.saveIterations(),
      ...names.map((n) => ({ name: `${n}/m`, tensor: this.moments.get(n)!.m })),
      ...names.map((n) => ({ name: `${n}/v`, tensor: this.moments.get(n)!.v })),
    ];
  }

  override async setWeights(weightValues: { name: string; tensor: tf.Tensor }[]): Promise<void> {
    const values = await this.extractIterations(weightValues);
    const pairs = pairMoments(values.map(({ name, tensor }) => ({ name, value: tensor })));
    this.dispose();
    for (const [name, { m: first, v: second }] of pairs) {
      if (this.momentsIn === 'js') {
        // copies: the optimiser changes its arrays in place, the backend's may be shared
        const own = async (x: tf.Tensor) => Float32Array.from((await x.data()) as Float32Array);
        this.hostMoments.set(name, { m: await own(first), v: await own(second), shape: [...first.shape] });
      } else {
        this.moments.set(name, { m: first.variable(false), v: second.variable(false) });
      }
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      weightDecay: this.weightDecay,
      excludeVectors: this.excludeVectors,
      moments: this.momentsIn,
    };
  }

  /** Makes a `Lamb` from {@link Lamb.getConfig}'s output (used when a saved model is loaded). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config as LambConfig);
  }
}

tf.serialization.registerClass(Lamb);

/**
 * Saved moments `<variable>/m` and `<variable>/v` paired by variable.
 *
 * @throws CrpError `invalid-argument` for a name of another form, or an m without its v
 */
function pairMoments<T>(entries: readonly { name: string; value: T }[]): Map<string, { m: T; v: T }> {
  const m = new Map<string, T>();
  const v = new Map<string, T>();
  for (const { name, value } of entries) {
    const slash = name.lastIndexOf('/');
    const kind = name.slice(slash + 1);
    if (slash < 0 || (kind !== 'm' && kind !== 'v')) {
      throw new CrpError('invalid-argument', `Lamb weight '${name}' is not '<variable>/m' or '<variable>/v'`);
    }
    (kind === 'm' ? m : v).set(name.slice(0, slash), value);
  }
  const pairs = new Map<string, { m: T; v: T }>();
  for (const [name, first] of m) {
    const second = v.get(name);
    if (second === undefined) {
      throw new CrpError('invalid-argument', `Lamb weights have '${name}/m' but no '${name}/v'`);
    }
    pairs.set(name, { m: first, v: second });
  }
  return pairs;
}
