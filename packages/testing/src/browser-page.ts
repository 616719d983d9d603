/**
 * A page script for headless Chromium, bundled one way for the browser tests, the conformance runner's browser
 * mode and the bench's browser suite (launched with gpuPageLaunchOptions of ./chromium.ts).
 */
import { build, type Plugin } from 'esbuild';

/** The page's script: a file, or source text whose imports resolve from `resolveDir`. */
export type PageSource = { entry: string } | { contents: string; resolveDir: string };

/**
 * esbuild's ESM bundle (es2022) of a page script, as text. `production` (default true) defines
 * `process.env.NODE_ENV` as "production" for the libraries that read it; false leaves esbuild's default.
 */
export async function bundlePage(
  source: PageSource,
  options: { plugins?: Plugin[]; production?: boolean } = {},
): Promise<string> {
  const out = await build({
    ...('entry' in source
      ? { entryPoints: [source.entry] }
      : { stdin: { contents: source.contents, resolveDir: source.resolveDir, loader: 'js' as const } }),
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
    ...(options.plugins === undefined ? {} : { plugins: options.plugins }),
    ...(options.production === false ? {} : { define: { 'process.env.NODE_ENV': '"production"' } }),
  });
  return out.outputFiles[0]!.text;
}
