import type { Tensor } from '@tensorflow/tfjs-core';
import { CrpError, listNames, nearestNames } from '../errors.js';
import type { Rule } from '../rules/rule.js';
import type { GraphNode } from './types.js';

/**
 * The model as a graph of layer calls, in topological order. Built by {@link graphFromLayersModel}; rewritten
 * (as a new graph) by canonizers. A graph does not own the model's weights; it owns the tensors a canonizer
 * created for it, released by {@link ModelGraph.dispose}.
 */
export class ModelGraph {
  readonly nodes: readonly GraphNode[];
  readonly inputId: string;
  readonly outputId: string;
  /** Input shape without the batch dimension (null where open). */
  readonly inputShape: readonly (number | null)[];
  /** Set when a final softmax was dropped so that the prediction is the logits. */
  readonly droppedSoftmax: string | undefined;
  /** Rules of user-supplied layers (options.customLayers), by node id. */
  readonly customRules: ReadonlyMap<string, Rule>;
  private readonly byId: Map<string, GraphNode>;
  private readonly byLayerName: Map<string, GraphNode>;
  private readonly consumers: Map<string, string[]>;
  private readonly owned: Tensor[];
  private disposed = false;

  constructor(init: {
    nodes: GraphNode[];
    inputId: string;
    outputId: string;
    inputShape: (number | null)[];
    droppedSoftmax?: string | undefined;
    owned?: Tensor[];
    customRules?: ReadonlyMap<string, Rule>;
  }) {
    this.customRules = init.customRules ?? new Map();
    this.nodes = init.nodes;
    this.inputId = init.inputId;
    this.outputId = init.outputId;
    this.inputShape = init.inputShape;
    this.droppedSoftmax = init.droppedSoftmax;
    this.owned = init.owned ?? [];
    this.byId = new Map(init.nodes.map((n) => [n.id, n]));
    this.byLayerName = new Map();
    for (const n of init.nodes) if (!this.byLayerName.has(n.layerName)) this.byLayerName.set(n.layerName, n);
    this.consumers = new Map(init.nodes.map((n) => [n.id, [] as string[]]));
    for (const n of init.nodes) for (const i of n.inputs) this.consumers.get(i)?.push(n.id);
  }

  /** Node ids in topological order. */
  get ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  /** Finds a node by id or by layer name; throws a {@link CrpError} listing the valid names. */
  node(idOrLayerName: string): GraphNode {
    const node = this.byId.get(idOrLayerName) ?? this.byLayerName.get(idOrLayerName);
    if (node === undefined) {
      throw new CrpError(
        'unknown-layer',
        `unknown layer '${idOrLayerName}' (nearest: ${nearestNames(idOrLayerName, this.ids).join(', ')}); the model's layers are: ${listNames(this.ids)}`,
      );
    }
    return node;
  }

  has(idOrLayerName: string): boolean {
    return this.byId.has(idOrLayerName) || this.byLayerName.has(idOrLayerName);
  }

  /** Ids of the nodes that consume `id`'s output. */
  consumersOf(id: string): readonly string[] {
    return this.consumers.get(id) ?? [];
  }

  /** `id` and every node it depends on. */
  ancestorsOf(id: string): Set<string> {
    return this.reach(id, (n) => this.node(n).inputs);
  }

  /** `id` and every node that depends on it. */
  descendantsOf(id: string): Set<string> {
    return this.reach(id, (n) => this.consumersOf(n));
  }

  /** `id` and every node reachable from it through `next`. */
  private reach(id: string, next: (id: string) => readonly string[]): Set<string> {
    const seen = new Set<string>();
    const stack = [id];
    while (stack.length > 0) {
      const cur = stack.pop()!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const n of next(cur)) stack.push(n);
    }
    return seen;
  }

  /** A new graph with some nodes replaced, used by canonizers. The new graph owns `owned` and takes over the
   * tensors this graph owned, so only the newest graph of a chain needs disposing. */
  withNodes(replace: Map<string, GraphNode>, owned: Tensor[]): ModelGraph {
    const inherited = this.owned.splice(0);
    return new ModelGraph({
      nodes: this.nodes.map((n) => replace.get(n.id) ?? n),
      inputId: this.inputId,
      outputId: this.outputId,
      inputShape: [...this.inputShape],
      droppedSoftmax: this.droppedSoftmax,
      customRules: this.customRules,
      owned: [...inherited, ...owned],
    });
  }

  /** Releases the tensors this graph owns (never the model's weights). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.owned) t.dispose();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}
