import { CrpError, describeError, isCrpError } from '@crp/common';
import { BaseEmbedding } from '@llamaindex/core/embeddings';
import { type BaseNode, MetadataMode, TextNode } from '@llamaindex/core/schema';
import {
  BaseVectorStore,
  type VectorStoreQuery,
  type VectorStoreQueryResult,
} from '@llamaindex/core/vector-store';
import type { ChromaClient, Collection } from 'chromadb';

/** Options of {@link ChromaVectorStore}. */
export interface ChromaVectorStoreOptions {
  /** Collection name (created with cosine distance if missing). */
  readonly collectionName: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8000. */
  readonly port?: number;
  readonly ssl?: boolean;
  /** Only needed when llamaindex should embed query strings itself; @crp/rag always passes vectors. */
  readonly embedModel?: BaseEmbedding;
}

class NoEmbedding extends BaseEmbedding {
  // biome-ignore lint/complexity/noUselessConstructor: makes the protected base constructor public
  constructor() {
    super();
  }
  async getTextEmbedding(): Promise<number[]> {
    throw new CrpError(
      'provider-config',
      'ChromaVectorStore got no embedModel; pass query embeddings or an embedModel.',
    );
  }
}

type ChromaMetadata = Record<string, string | number | boolean>;

/**
 * A llamaindex `BaseVectorStore` over a Chroma server (the `chromadb` npm client). Nodes are stored with
 * their embedding, text and flat metadata; `ref_doc_id` (the source file) allows deleting a file's
 * chunks. Similarity is `1 - cosine distance`. Needs the optional dependency `chromadb`.
 */
export class ChromaVectorStore extends BaseVectorStore<ChromaClient> {
  storesText = true;
  readonly options: ChromaVectorStoreOptions;
  #client: ChromaClient | undefined;
  #collection: Promise<Collection> | undefined;

  constructor(options: ChromaVectorStoreOptions) {
    super({ embedModel: options.embedModel ?? new NoEmbedding() });
    if (
      !options?.collectionName ||
      !/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$/.test(options.collectionName)
    ) {
      throw new CrpError(
        'invalid-argument',
        `Chroma collection names have 3-63 characters [a-zA-Z0-9._-], starting and ending alphanumeric; got "${options?.collectionName}".`,
      );
    }
    this.options = options;
  }

  /** Base URL of the server. */
  get url(): string {
    const o = this.options;
    return `${o.ssl ? 'https' : 'http'}://${o.host ?? '127.0.0.1'}:${o.port ?? 8000}`;
  }

  /**
   * A store for a `--chroma` URL: `http://HOST:PORT` (collection `crp-rag`) or `http://HOST:PORT/COLLECTION`.
   */
  static fromUrl(url: string, options: { collectionName?: string } = {}): ChromaVectorStore {
    let u: URL;
    try {
      u = new URL(url);
    } catch (error) {
      throw new CrpError(
        'invalid-argument',
        `--chroma must be a URL such as http://127.0.0.1:8000; got "${url}".`,
        {
          cause: error,
        },
      );
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new CrpError(
        'invalid-argument',
        `--chroma must be an http(s) URL such as http://127.0.0.1:8000; got "${url}".`,
      );
    }
    const ssl = u.protocol === 'https:';
    const path = u.pathname.replace(/^\/+|\/+$/g, '');
    return new ChromaVectorStore({
      collectionName: options.collectionName ?? (path || 'crp-rag'),
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : ssl ? 443 : 8000,
      ssl,
    });
  }

  /** Key for {@link ExternalVectorStore}: server and collection. */
  get key(): string {
    const o = this.options;
    return `chroma:${o.ssl ? 'https' : 'http'}://${o.host ?? '127.0.0.1'}:${o.port ?? 8000}/${o.collectionName}`;
  }

  client(): ChromaClient {
    if (!this.#client)
      throw new CrpError('store-failed', 'The Chroma client is created on first use; call add/query first.');
    return this.#client;
  }

  async #coll(): Promise<Collection> {
    this.#collection ??= (async () => {
      let mod: typeof import('chromadb');
      try {
        mod = await import('chromadb');
      } catch (error) {
        throw new CrpError(
          'provider-config',
          'ChromaVectorStore needs the optional dependency chromadb; install it next to @crp/rag.',
          {
            cause: error,
          },
        );
      }
      this.#client = new mod.ChromaClient({
        host: this.options.host ?? '127.0.0.1',
        port: this.options.port ?? 8000,
        ssl: this.options.ssl ?? false,
      });
      return this.#client.getOrCreateCollection({
        name: this.options.collectionName,
        configuration: { hnsw: { space: 'cosine' } },
        embeddingFunction: null,
      });
    })();
    this.#collection.catch(() => {
      this.#collection = undefined;
    });
    return this.#collection;
  }

  async add(nodes: BaseNode[]): Promise<string[]> {
    if (nodes.length === 0) return [];
    const c = await this.#wrap('add', () => this.#coll());
    const metadatas = nodes.map((n) => {
      const m: ChromaMetadata = {};
      for (const [k, v] of Object.entries(n.metadata)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') m[k] = v;
      }
      m.ref_doc_id = n.sourceNode?.nodeId ?? n.id_;
      return m;
    });
    await this.#wrap('add', () =>
      c.upsert({
        ids: nodes.map((n) => n.id_),
        embeddings: nodes.map((n) => n.getEmbedding()),
        metadatas,
        documents: nodes.map((n) => n.getContent(MetadataMode.NONE)),
      }),
    );
    return nodes.map((n) => n.id_);
  }

  async delete(refDocId: string): Promise<void> {
    const c = await this.#wrap('delete', () => this.#coll());
    await this.#wrap('delete', () => c.delete({ where: { ref_doc_id: refDocId } }));
  }

  async query(query: VectorStoreQuery): Promise<VectorStoreQueryResult> {
    if (!query.queryEmbedding)
      throw new CrpError('invalid-argument', 'ChromaVectorStore.query needs queryEmbedding.');
    const c = await this.#wrap('query', () => this.#coll());
    const res = await this.#wrap('query', () =>
      c.query({
        queryEmbeddings: [query.queryEmbedding!],
        nResults: query.similarityTopK,
        include: ['distances', 'documents', 'metadatas'],
      }),
    );
    const ids = res.ids[0] ?? [];
    const distances = res.distances?.[0] ?? [];
    const docs = res.documents?.[0] ?? [];
    const metas = res.metadatas?.[0] ?? [];
    return {
      ids,
      similarities: ids.map((_, i) => 1 - (distances[i] ?? 1)),
      nodes: ids.map(
        (id, i) => new TextNode({ id_: id, text: docs[i] ?? '', metadata: { ...(metas[i] ?? {}) } }),
      ),
    };
  }

  /** Number of stored vectors. */
  async count(): Promise<number> {
    const c = await this.#wrap('count', () => this.#coll());
    return this.#wrap('count', () => c.count());
  }

  async #wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isCrpError(error)) throw error;
      const message = describeError(error);
      const cause = (error as { cause?: unknown })?.cause;
      const down =
        /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|fetch failed|Failed to connect|connect to the Chroma|ChromaConnectionError|timed? ?out/i.test(
          `${message} ${(error as Error)?.name ?? ''} ${describeError(cause)}`,
        );
      if (down) {
        throw new CrpError(
          'unreachable',
          `The Chroma server ${this.url} does not answer (${what}: ${message}); start it (npx chroma run --path ./chroma --host 127.0.0.1 --port ${this.options.port ?? 8000}) or check --chroma.`,
          { cause: error, details: { url: this.url } },
        );
      }
      throw new CrpError('store-failed', `Chroma ${what} on ${this.key} failed: ${message}`, {
        cause: error,
      });
    }
  }
}
