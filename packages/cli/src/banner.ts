/**
 * The line that says which TF.js backend runs ("TF.js backend: wasm (2 threads)"). It is printed when a command
 * starts its work, after every argument was checked, so that a usage error prints only the error and the usage.
 */
let pending: string | undefined;

/** Sets the backend line that {@link workStarts} prints (undefined: print nothing, e.g. with --json). */
export function setBanner(line: string | undefined): void {
  pending = line;
}

/** Marks the point where a command has checked every argument and begins to work; prints the backend line once. */
export function workStarts(): void {
  if (pending === undefined) return;
  console.error(pending);
  pending = undefined;
}
