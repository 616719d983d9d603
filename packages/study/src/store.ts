import type { RasterImage } from '@crp/vis';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/**
 * Where a study keeps its parts, so that a study run again (after a kill, or with one option changed) does not
 * recompute what is finished: each part is a JSON value under a name, stored with the key of everything it
 * depends on; pictures are stored by name. On disk: `fileStudyStore(dir)` of `@crp/study/node` (atomic
 * writes); in memory: {@link memoryStudyStore}.
 */
export interface StudyStore {
  /** The stored part `name`, or undefined. */
  readPart(name: string): Promise<{ key: string; value: unknown } | undefined>;
  writePart(name: string, part: { key: string; value: unknown }): Promise<void>;
  /** Stores a picture; returns where it is (a path relative to the study's folder, for the JSON). */
  writeImage(name: string, image: RasterImage): Promise<string>;
  readImage(name: string): Promise<RasterImage | undefined>;
  /** Keeps the fine-tuned model (optional: without it fine-tuning is redone on every run). */
  saveModel?(model: LayersModel): Promise<void>;
  loadModel?(): Promise<LayersModel | undefined>;
}

/** A {@link StudyStore} in memory (browsers, tests): nothing survives the process. */
export function memoryStudyStore(): StudyStore {
  const parts = new Map<string, { key: string; value: unknown }>();
  const images = new Map<string, RasterImage>();
  return {
    readPart: async (name) => {
      const p = parts.get(name);
      // a copy, as a file would give: callers may not share state with the store
      return p === undefined ? undefined : (JSON.parse(JSON.stringify(p)) as { key: string; value: unknown });
    },
    writePart: async (name, part) => {
      parts.set(name, JSON.parse(JSON.stringify(part)) as { key: string; value: unknown });
    },
    writeImage: async (name, image) => {
      images.set(name, image);
      return name;
    },
    readImage: async (name) => images.get(name),
  };
}
