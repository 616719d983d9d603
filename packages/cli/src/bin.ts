#!/usr/bin/env node
import { describeError } from '@crp/common';
import { main } from './main.js';

// An error that escapes every handler (e.g. thrown by a user's loader module in a callback) is printed as one
// line and exits 1. Registered before any backend loads: emscripten's own handler (wasm) rethrows, which makes
// Node print the throwing line of its minified source, kilobytes long.
const fatal = (err: unknown) => {
  console.error(`crp: ${describeError(err)}`);
  if (process.env.CRP_DEBUG && err instanceof Error) console.error(err.stack);
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

main(process.argv.slice(2)).then((code) => process.exit(code), fatal);
