/**
 * How the conformance runners reach the reference data: the only part that differs between Node (the file
 * system, reference-files-node.ts) and a browser page (HTTP from the server of `--browser`,
 * browser/http-files.ts). Everything else (finding cases, building the models, running and comparing) is the
 * same code in both.
 *
 * Paths are strings joined with '/' (an absolute directory in Node; the page uses the same strings, so that
 * messages name the same files).
 */
export interface ReferenceFiles {
  /** The file's text; `undefined` when it does not exist. Throws when it exists but cannot be read. */
  readText(path: string): Promise<string | undefined>;
  /** The file's bytes (models such as `.onnx`); `undefined` when it does not exist. Throws when it exists but
   * cannot be read. */
  readBytes(path: string): Promise<Uint8Array | undefined>;
  /** The names in a directory; `undefined` when the directory does not exist. */
  list(dir: string): Promise<string[] | undefined>;
  /** Whether the file exists and can be read. */
  exists(path: string): Promise<boolean>;
}

/** `dir/relative`, with '/' (no doubled separator). */
export function joinPath(dir: string, relative: string): string {
  return `${dir.replace(/\/+$/, '')}/${relative.replace(/^\.\//, '')}`;
}

/** The directory that holds `path`. */
export function parentOf(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const at = trimmed.lastIndexOf('/');
  return at <= 0 ? (at === 0 ? '/' : '.') : trimmed.slice(0, at);
}

/** A relative path in one spelling: './a//b/../c' and 'a/c' are the same file. */
export function normalizeRelative(path: string): string {
  const parts: string[] = [];
  for (const part of path.replace(/\\/g, '/').split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

/** `path` relative to `dir` when it lies inside it, else `path` unchanged (for messages). */
export function relativeTo(dir: string, path: string): string {
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : path;
}
