import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { CrpError } from '@crp/common';
import { EXTENSIONS } from '../ingest/document.js';

/**
 * Relative paths (with `/`, sorted) of the files under `root` that a loader understands
 * (see {@link EXTENSIONS}). Hidden files and folders and `node_modules` are skipped.
 */
export async function scanFolder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (dir === root) {
        throw new CrpError(
          'not-found',
          `Cannot read the folder to index "${root}": it must be an existing, readable directory.`,
          {
            cause: error,
          },
        );
      }
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && EXTENSIONS[path.extname(e.name).toLowerCase()]) {
        out.push(path.relative(root, full).split(path.sep).join('/'));
      }
    }
  };
  await walk(root);
  return out.sort();
}
