import { selectBackend } from '@crp/backend';
import { describeError, isCrpError } from '@crp/common';
import { setBanner } from './banner.js';
import { atlas, atlasUsage } from './commands/atlas.js';
import { decompose, decomposeUsage } from './commands/decompose.js';
import { evaluate, evaluateUsage } from './commands/evaluate.js';
import { explain, explainUsage } from './commands/explain.js';
import { layers, layersUsage } from './commands/layers.js';
import { merge, mergeUsage } from './commands/merge.js';
import { prune, pruneUsage } from './commands/prune.js';
import { refs, refsUsage } from './commands/refs.js';
import { report, reportUsage } from './commands/report.js';
import { study, studyUsage } from './commands/study.js';
import { train, trainUsage } from './commands/train.js';
import { worker, workerUsage } from './commands/worker.js';
import { fromSystemError, isSystemError } from './files.js';
import { UsageError } from './usage-error.js';

interface Command {
  usage: string;
  run: (argv: string[], json: boolean) => Promise<unknown>;
}

const commands: Record<string, Command> = {
  study: { usage: studyUsage, run: study },
  train: { usage: trainUsage, run: train },
  explain: { usage: explainUsage, run: explain },
  layers: { usage: layersUsage, run: layers },
  atlas: { usage: atlasUsage, run: atlas },
  decompose: { usage: decomposeUsage, run: decompose },
  refs: { usage: refsUsage, run: refs },
  prune: { usage: pruneUsage, run: prune },
  evaluate: { usage: evaluateUsage, run: evaluate },
  report: { usage: reportUsage, run: report },
  worker: { usage: workerUsage, run: worker },
  merge: { usage: mergeUsage, run: merge },
};

const usage = `crp <command> [options]

Commands:
${Object.values(commands)
  .map((c) => `  ${c.usage.split('\n')[0]}`)
  .join('\n')}

Global options: --json (machine-readable output on stdout), --threads N|auto (wasm threads),
  --winograd (wasm: VGG16-size 3x3 convs as Winograd F(4x4,3x3), about 1.45x less CPU, float32 error ~1e-5), --help

Exit status: 0 done; 1 failed (a file that cannot be read or written, a model or data set that does not fit, an
error while working: the message names the file or value and what is valid); 2 usage error (an unknown
command or option, a malformed or out-of-range argument, a class, layer or region that the model or data does
not have; printed with the command's usage, before any work). CRP_DEBUG=1 prints the stack of unexpected errors.`;

/** node:util parseArgs's errors for an unknown option, a missing or stray value: mistakes of the command line. */
function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/** Runs the CLI; returns the exit status (0 ok, 1 failure, 2 usage error). */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  let threads: number | 'auto' = 'auto';
  let winograd = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') continue;
    if (a === '--winograd') {
      winograd = true;
      continue;
    }
    if (a === '--threads') {
      const v = argv[++i];
      threads = v === 'auto' ? 'auto' : Number(v);
      continue;
    }
    rest.push(a);
  }
  const [name, ...args] = rest;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    console.error(`unknown command '${name}'; valid: ${Object.keys(commands).join(', ')}\n\n${usage}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    const choice = await selectBackend({ threads, winograd });
    // printed when the command starts working, so that a usage error shows only the error and the usage
    setBanner(
      json
        ? undefined
        : `TF.js backend: ${choice.backend}${choice.threads > 1 ? ` (${choice.threads} threads)` : ''}${winograd && choice.backend === 'wasm' ? ', Winograd 3x3 convolutions' : ''}`,
    );
    const result = await command.run(args, json);
    if (json)
      console.log(JSON.stringify({ backend: choice.backend, threads: choice.threads, result }, null, 2));
    return 0;
  } catch (err) {
    return reportError(name, command, err);
  } finally {
    setBanner(undefined);
  }
}

/**
 * Prints an error of command `name` and returns the exit status: 2 for a usage error (with the usage), 1 for
 * anything else. File-system errors become typed errors that name the path and the reason; no stack is printed
 * unless CRP_DEBUG is set.
 */
export function reportError(name: string, command: { usage: string }, err: unknown): 1 | 2 {
  if (err instanceof UsageError || isParseArgsError(err)) {
    console.error(`crp ${name}: ${(err as Error).message}\n\n${command.usage}`);
    return 2;
  }
  const typed = isSystemError(err) ? fromSystemError(err) : err;
  if (isCrpError(typed)) {
    console.error(`crp ${name}: ${typed.message}`);
    return 1;
  }
  const debug = process.env.CRP_DEBUG !== undefined && process.env.CRP_DEBUG !== '';
  const stack = debug && err instanceof Error && err.stack !== undefined ? `\n${err.stack}` : '';
  console.error(
    `crp ${name} failed: ${describeError(err)}${stack}${debug ? '' : ' (CRP_DEBUG=1 prints the stack)'}`,
  );
  return 1;
}
