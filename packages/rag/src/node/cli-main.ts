#!/usr/bin/env node
import { runCli } from './cli.js';

const result = await runCli(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stderr.isTTY),
});
if (result.stop) {
  const stop = result.stop;
  const shutdown = () => {
    void stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} else {
  // exit once stdout and stderr are written rather than when the event loop runs dry: by then V8 had started
  // a full garbage collection of a heap about to be dropped (~50 ms CPU, 0.1-0.3 s on a loaded machine)
  const code = result.code;
  let open = 2;
  const written = () => {
    if (--open === 0) process.exit(code);
  };
  process.stdout.write('', written);
  process.stderr.write('', written);
}
