import { defineConfig } from 'vite';

/**
 * A static site: `vite build` writes dist/ (HTML, scripts, the TF.js wasm binaries, the bundled model and
 * digits from public/), which any static file server can host; `base: './'` keeps it working in a sub-folder.
 */
export default defineConfig({
  base: './',
  build: {
    target: 'es2022',
    // TF.js is one large chunk by nature
    chunkSizeWarningLimit: 4000,
  },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
