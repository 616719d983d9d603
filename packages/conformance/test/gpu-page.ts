/**
 * A page script bundled, served on 127.0.0.1 (port 0) and opened in headless Chromium with the GPU backends'
 * launch options: the set-up of the tests that run one op on webgl/webgpu in a real page.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundlePage } from '@crp/testing/browser-page';
import { gpuPageLaunchOptions } from '@crp/testing/chromium';
import { chromium, type Page } from 'playwright-core';

/**
 * Opens `contents` (a module that sets `window[ready]`) and runs `use` with the page and the page errors seen so
 * far; browser and server are closed afterwards, also on failure.
 */
export async function withGpuPage<T>(
  executable: string,
  contents: string,
  ready: string,
  use: (page: Page, errors: readonly string[]) => Promise<T>,
): Promise<T> {
  const script = await bundlePage({ contents, resolveDir: import.meta.dirname });
  const server = createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const browser = await chromium.launch(gpuPageLaunchOptions(executable));
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page.waitForFunction((name) => name in window, ready);
    return await use(page, errors);
  } finally {
    await browser.close();
    server.close();
  }
}
