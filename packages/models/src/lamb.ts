import { CrpError } from '@crp/common';
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
}

interface Moments {
  m: tf.Variable;
  v: tf.Variable;
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
 * (names `<variable>/m`, `<variable>/v`).
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
  private moments = new Map<string, Moments>();

  /** @throws CrpError `invalid-argument` for hyper-parameters outside their ranges. */
  constructor(config: LambConfig = {}) {
    super();
    this.learningRate = config.learningRate ?? 1e-3;
    this.beta1 = config.beta1 ?? 0.9;
    this.beta2 = config.beta2 ?? 0.999;
    this.epsilon = config.epsilon ?? 1e-6;
    this.weightDecay = config.weightDecay ?? 0;
    this.excludeVectors = config.excludeVectors ?? false;
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
  }

  override applyGradients(
    variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[],
  ): void {
    const pairs: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor])
      : Object.entries(variableGradients);
    const t = this.iterations + 1; // the getter: iterations_ starts undefined
    const correction1 = 1 - this.beta1 ** t;
    const correction2 = 1 - this.beta2 ** t;
    const variables = tf.engine().registeredVariables;
    tf.tidy(() => {
      for (const [name, gradient] of pairs) {
        if (gradient == null) continue;
        const w = variables[name];
        if (w === undefined) {
          throw new CrpError(
            'invalid-argument',
            `Lamb got a gradient for '${name}', which is not a variable`,
          );
        }
        let state = this.moments.get(name);
        if (state === undefined) {
          state = {
            m: tf.tidy(() => tf.zerosLike(w).variable(false)),
            v: tf.tidy(() => tf.zerosLike(w).variable(false)),
          };
          this.moments.set(name, state);
        }
        const m = tf.add(tf.mul(state.m, this.beta1), tf.mul(gradient, 1 - this.beta1));
        const v = tf.add(tf.mul(state.v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
        state.m.assign(m);
        state.v.assign(v);
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
      }
    });
    this.incrementIterations();
  }

  override dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }

  override async getWeights(): Promise<{ name: string; tensor: tf.Tensor }[]> {
    const names = [...this.moments.keys()];
    return [
      await this.saveIterations(),
      ...names.map((n) => ({ name: `${n}/m`, tensor: this.moments.get(n)!.m })),
      ...names.map((n) => ({ name: `${n}/v`, tensor: this.moments.get(n)!.v })),
    ];
  }

  override async setWeights(weightValues: { name: string; tensor: tf.Tensor }[]): Promise<void> {
    const values = await this.extractIterations(weightValues);
    const m = new Map<string, tf.Tensor>();
    const v = new Map<string, tf.Tensor>();
    for (const { name, tensor } of values) {
      const slash = name.lastIndexOf('/');
      const kind = name.slice(slash + 1);
      if (slash < 0 || (kind !== 'm' && kind !== 'v')) {
        throw new CrpError(
          'invalid-argument',
          `Lamb weight '${name}' is not '<variable>/m' or '<variable>/v'`,
        );
      }
      (kind === 'm' ? m : v).set(name.slice(0, slash), tensor);
    }
    this.dispose();
    for (const [name, first] of m) {
      const second = v.get(name);
      if (second === undefined)
        throw new CrpError('invalid-argument', `Lamb weights have '${name}/m' but no '${name}/v'`);
      this.moments.set(name, { m: first.variable(false), v: second.variable(false) });
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
