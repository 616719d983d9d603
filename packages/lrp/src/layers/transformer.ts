/**
 * The TF.js layers a Vision Transformer needs beyond tfjs-layers' own (Conv2D, Reshape, Dense, LayerNormalization,
 * Permute, Softmax, Add, Activation 'gelu'): a learned class token, a learned position embedding, the product of two
 * activations and taking out one token. They are serialisable (registered with tf.serialization), and their `call`
 * is the graph node's forward, so a model built from them runs exactly as the engine explains it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { CrpError } from '../errors.js';
import { forwardTransformer, matMulActivations } from '../graph/transformer-layers.js';

type Shape = (number | null)[];

function oneShape(shape: tfl.Shape | tfl.Shape[]): Shape {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as Shape;
}

function oneTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0]! : inputs;
}

/** Prepends a learned token ([1, 1, D], torchvision's `class_token`) to the tokens [B, T, D] -> [B, T + 1, D]. */
export class ClassToken extends tfl.layers.Layer {
  static className = 'ClassToken';
  private token: tfl.LayerVariable | undefined;

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const s = oneShape(inputShape);
    this.token = this.addWeight('token', [1, 1, s[2]!], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = oneShape(inputShape);
    return [s[0]!, s[1] === null ? null : s[1]! + 1, s[2]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return forwardTransformer(this.name, { kind: 'classToken', token: this.token!.read() }, [
      oneTensor(inputs),
    ]);
  }
}

export interface PositionEmbeddingArgs {
  name?: string;
}

/** Adds a learned embedding [1, T, D] (torchvision's `encoder.pos_embedding`) to the tokens [B, T, D]. A token
 * count other than T is refused by name (no interpolation). */
export class PositionEmbedding extends tfl.layers.Layer {
  static className = 'PositionEmbedding';
  private embedding: tfl.LayerVariable | undefined;

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const s = oneShape(inputShape);
    if (s[1] === null || s[2] === null) {
      throw new CrpError(
        'invalid-shape',
        `PositionEmbedding '${this.name}' needs a fixed token count and width, got [${s.join(', ')}]`,
      );
    }
    this.embedding = this.addWeight('embedding', [1, s[1]!, s[2]!], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape) as tfl.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return forwardTransformer(this.name, { kind: 'positionEmbedding', embedding: this.embedding!.read() }, [
      oneTensor(inputs),
    ]);
  }
}

export interface MatMulArgs {
  /** Multiply by the second input's transpose (attention scores q k^T). Default false. */
  transposeB?: boolean;
  /** Factor applied to the product (1 / sqrt(head width) for attention scores). Default 1. */
  scale?: number;
  name?: string;
}

/** `scale * a b` (or `scale * a b^T`) of two activations, batched over the leading axes: attention scores from
 * queries and keys [B, H, T, d], and the attention-weighted values. */
export class MatMul extends tfl.layers.Layer {
  static className = 'MatMul';
  readonly transposeB: boolean;
  readonly scale: number;

  constructor(args: MatMulArgs = {}) {
    super(args);
    this.transposeB = args.transposeB === true;
    this.scale = args.scale ?? 1;
    if (!Number.isFinite(this.scale)) {
      throw new CrpError('invalid-argument', `MatMul scale must be a finite number, got ${args.scale}`);
    }
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [a, b] = inputShape as tfl.Shape[];
    if (a === undefined || b === undefined || a.length !== b.length || a.length < 3) {
      throw new CrpError(
        'invalid-shape',
        `MatMul '${this.name}' takes two inputs of equal rank >= 3, got ${JSON.stringify(inputShape)}`,
      );
    }
    const n = this.transposeB ? b[b.length - 2]! : b[b.length - 1]!;
    return [...a.slice(0, -1), n];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [a, b] = inputs as tf.Tensor[];
    return matMulActivations(a!, b!, this.transposeB, this.scale);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), transposeB: this.transposeB, scale: this.scale };
  }
}

export interface SelectTokenArgs {
  /** The token taken out (0: the class token). Default 0. */
  index?: number;
  name?: string;
}

/** Takes one token out of [B, T, D] -> [B, D]: the classification head reads the class token. */
export class SelectToken extends tfl.layers.Layer {
  static className = 'SelectToken';
  readonly index: number;

  constructor(args: SelectTokenArgs = {}) {
    super(args);
    this.index = args.index ?? 0;
    if (!Number.isInteger(this.index) || this.index < 0) {
      throw new CrpError('invalid-argument', `SelectToken index must be an integer >= 0, got ${args.index}`);
    }
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = oneShape(inputShape);
    return [s[0]!, s[2]!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return forwardTransformer(this.name, { kind: 'selectToken', index: this.index }, [oneTensor(inputs)]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), index: this.index };
  }
}

tf.serialization.registerClass(ClassToken);
tf.serialization.registerClass(PositionEmbedding);
tf.serialization.registerClass(MatMul);
tf.serialization.registerClass(SelectToken);

/** Layer factories in tfjs-layers' style: `classToken({ name: 'class_token' })`. */
export const transformerLayers = {
  classToken: (args: { name?: string } = {}) => new ClassToken(args),
  positionEmbedding: (args: PositionEmbeddingArgs = {}) => new PositionEmbedding(args),
  matMul: (args: MatMulArgs = {}) => new MatMul(args),
  selectToken: (args: SelectTokenArgs = {}) => new SelectToken(args),
};
