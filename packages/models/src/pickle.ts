import { CrpError } from '@crp/common';

/** A Python tuple (lists are JS arrays; tuples are kept apart because arguments come as tuples). */
export class PyTuple {
  constructor(readonly items: readonly unknown[]) {}
}

/** A Python dict or OrderedDict, in insertion order; `attributes` holds what BUILD set on it (e.g. torch's
 * `_metadata` of a state dict). */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  attributes: unknown;
  constructor(readonly className = 'builtins.dict') {}
}

/** An instance of an allowed class, never constructed for real: its class name, the arguments NEWOBJ gave
 * and the state BUILD gave (the instance `__dict__` of an `nn.Module`). */
export class PyObject {
  state: unknown;
  constructor(
    readonly className: string,
    readonly args: readonly unknown[],
  ) {}
}

/** A global that the pickle referred to and that the allow-list admits. */
export class PyGlobal {
  constructor(
    readonly qualifiedName: string,
    readonly kind: 'function' | 'class',
    readonly apply?: (args: readonly unknown[]) => unknown,
  ) {}
}

/** What an {@link unpickle} run may touch. Nothing outside these tables is ever resolved, let alone run. */
export interface UnpickleOptions {
  /** Names the data in error messages (e.g. `'model.pth' (archive/data.pkl)`). */
  source: string;
  /** Callables that REDUCE may apply, by `module.name`: our own inert re-implementations. */
  functions: Readonly<Record<string, (args: readonly unknown[]) => unknown>>;
  /** Modules (and their sub-modules) whose classes become inert {@link PyObject}s (NEWOBJ + BUILD only). */
  classModules: readonly string[];
  /** Globals that stand for a value (e.g. `torch.FloatStorage`), by `module.name`. */
  constants: Readonly<Record<string, unknown>>;
  /** Resolves persistent ids (torch: storages). Without it, a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Describes the allowed globals in `unsafe-content` messages (default: lists them all). */
  allowed?: string;
  /** Added to the message of an `unsafe-content` error (what to do instead). */
  unsafeHint?: string;
}

// Python 2 module names that protocol-2 pickles written by Python 3 use
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

const OPCODE_NAMES: Record<number, string> = {
  40: 'MARK',
  46: 'STOP',
  48: 'POP',
  49: 'POP_MARK',
  50: 'DUP',
  70: 'FLOAT',
  73: 'INT',
  74: 'BININT',
  75: 'BININT1',
  76: 'LONG',
  77: 'BININT2',
  78: 'NONE',
  80: 'PERSID',
  81: 'BINPERSID',
  82: 'REDUCE',
  83: 'STRING',
  84: 'BINSTRING',
  85: 'SHORT_BINSTRING',
  86: 'UNICODE',
  88: 'BINUNICODE',
  97: 'APPEND',
  98: 'BUILD',
  99: 'GLOBAL',
  100: 'DICT',
  125: 'EMPTY_DICT',
  101: 'APPENDS',
  103: 'GET',
  104: 'BINGET',
  105: 'INST',
  106: 'LONG_BINGET',
  108: 'LIST',
  93: 'EMPTY_LIST',
  111: 'OBJ',
  112: 'PUT',
  113: 'BINPUT',
  114: 'LONG_BINPUT',
  115: 'SETITEM',
  116: 'TUPLE',
  41: 'EMPTY_TUPLE',
  117: 'SETITEMS',
  71: 'BINFLOAT',
  128: 'PROTO',
  129: 'NEWOBJ',
  130: 'EXT1',
  131: 'EXT2',
  132: 'EXT4',
  133: 'TUPLE1',
  134: 'TUPLE2',
  135: 'TUPLE3',
  136: 'NEWTRUE',
  137: 'NEWFALSE',
  138: 'LONG1',
  139: 'LONG4',
  66: 'BINBYTES',
  67: 'SHORT_BINBYTES',
  140: 'SHORT_BINUNICODE',
  141: 'BINUNICODE8',
  142: 'BINBYTES8',
  143: 'EMPTY_SET',
  144: 'ADDITEMS',
  145: 'FROZENSET',
  146: 'NEWOBJ_EX',
  147: 'STACK_GLOBAL',
  148: 'MEMOIZE',
  149: 'FRAME',
  150: 'BYTEARRAY8',
  151: 'NEXT_BUFFER',
  152: 'READONLY_BUFFER',
};

/** A little-endian two's-complement integer as a number, or a bigint beyond 2^53. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Python's `repr`-style text of a protocol-0 string argument: strips quotes, keeps simple escapes. */
function unquote(text: string): string {
  const q = text[0];
  if ((q === "'" || q === '"') && text.endsWith(q) && text.length >= 2) {
    return text.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
  }
  return text;
}

/**
 * Runs the pickle in `bytes` on a restricted virtual machine: every opcode of protocols 0 to 5 that builds
 * data is supported, but a global (GLOBAL, STACK_GLOBAL, INST) is only resolved through `options`' tables and
 * only our own inert functions are ever applied (REDUCE); classes of the allowed modules become {@link PyObject}
 * stubs. Nothing from the file is executed.
 *
 * @returns the unpickled value: null, booleans, numbers (bigint beyond 2^53), strings, Uint8Array (bytes),
 *   arrays (lists), {@link PyTuple}, {@link PyDict}, Set, {@link PyObject}, and what the functions return
 * @throws CrpError `unsafe-content` naming a global outside the allowed set; `corrupt-file` for a truncated or
 *   damaged pickle; `unsupported-format` for pickle features that need more than data (extension registry,
 *   out-of-band buffers)
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  const { source } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength;
  const decoder = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  let pos = 0;
  let opcodeAt = 0;
  let opcode = 0;

  const corrupt = (what: string): never => {
    throw new CrpError('corrupt-file', `${source}: the pickle ${what}`, {
      details: { source, offset: opcodeAt },
    });
  };
  const opName = () => OPCODE_NAMES[opcode] ?? `0x${opcode.toString(16)}`;
  const need = (k: number) => {
    // a negative length would move backwards and re-read the same opcode for ever
    if (k < 0) corrupt(`has a negative ${opName()} length at byte ${opcodeAt}`);
    if (pos + k > n) corrupt(`ends inside ${opName()} at byte ${opcodeAt} (it needs ${k} more bytes)`);
  };
  const take = (k: number): Uint8Array => {
    need(k);
    const out = bytes.subarray(pos, pos + k);
    pos += k;
    return out;
  };
  /** Moves past a field of `k` bytes and returns where it starts. */
  const field = (k: number) => {
    need(k);
    pos += k;
    return pos - k;
  };
  const u8 = () => bytes[field(1)]!;
  const u16 = () => view.getUint16(field(2), true);
  const i32 = () => view.getInt32(field(4), true);
  const u32 = () => view.getUint32(field(4), true);
  const u64 = () => {
    const v = view.getBigUint64(field(8), true);
    if (v > BigInt(n))
      corrupt(`has a ${opName()} length of ${v} bytes at byte ${opcodeAt}, beyond its ${n} bytes`);
    return Number(v);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) corrupt(`ends inside ${opName()} at byte ${opcodeAt} (no end of line)`);
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  };

  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  // a function, not stack.push: `stack.push(popMark())` would push onto the stack that popMark replaces
  const push = (v: unknown) => {
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0) corrupt(`pops an empty stack at ${opName()} (byte ${opcodeAt})`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) corrupt(`reads an empty stack at ${opName()} (byte ${opcodeAt})`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const outer = metastack.pop();
    if (outer === undefined) corrupt(`has ${opName()} without a MARK (byte ${opcodeAt})`);
    stack = outer!;
    return items;
  };
  const get = (key: number) => {
    if (!memo.has(key)) corrupt(`refers to memo entry ${key}, which was never stored (byte ${opcodeAt})`);
    return memo.get(key);
  };

  const resolve = (rawModule: string, name: string): unknown => {
    const module = PY2_MODULES[rawModule] ?? rawModule;
    const qualified = `${module}.${name}`;
    if (Object.hasOwn(options.constants, qualified)) return options.constants[qualified];
    const fn = Object.hasOwn(options.functions, qualified) ? options.functions[qualified] : undefined;
    if (fn !== undefined) return new PyGlobal(qualified, 'function', fn);
    if (
      options.classModules.some((m) => module === m || module.startsWith(`${m}.`)) &&
      /^[A-Z_]/.test(name)
    ) {
      return new PyGlobal(qualified, 'class');
    }
    const allowed =
      options.allowed ??
      `${[...Object.keys(options.functions), ...Object.keys(options.constants)].join(', ')}, and classes of ${options.classModules.join(', ')} as plain data`;
    throw new CrpError(
      'unsafe-content',
      `${source} refers to the Python global '${qualified}', which is outside the allowed set, so it was not loaded (nothing in the file was executed). ` +
        `Allowed: ${allowed}.${options.unsafeHint === undefined ? '' : ` ${options.unsafeHint}`}`,
      { details: { source, global: qualified } },
    );
  };
  const instantiate = (cls: unknown, args: readonly unknown[]): PyObject => {
    if (!(cls instanceof PyGlobal) || cls.kind !== 'class') {
      const what = cls instanceof PyGlobal ? cls.qualifiedName : typeof cls;
      throw new CrpError(
        'unsafe-content',
        `${source}: the pickle creates an object of ${what}, which is not an allowed class; nothing was executed`,
        { details: { source, global: what } },
      );
    }
    return new PyObject(cls.qualifiedName, args);
  };
  const setItems = (target: unknown, items: readonly unknown[]) => {
    if (!(target instanceof PyDict)) corrupt(`sets items on a non-dict at byte ${opcodeAt}`);
    if (items.length % 2 !== 0) corrupt(`has an odd number of items for SETITEMS at byte ${opcodeAt}`);
    for (let i = 0; i < items.length; i += 2) (target as PyDict).map.set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: readonly unknown[]) => {
    if (Array.isArray(target)) for (const item of items) target.push(item);
    else if (target instanceof Set) for (const item of items) target.add(item);
    else corrupt(`appends to a non-list at byte ${opcodeAt}`);
  };

  for (;;) {
    if (pos >= n) corrupt(`ends at byte ${n} before its STOP opcode (the data is truncated)`);
    opcodeAt = pos;
    opcode = bytes[pos++]!;
    switch (opcode) {
      case 0x80: // PROTO
        if (u8() > 5) corrupt(`uses protocol ${bytes[pos - 1]}; protocols 0 to 5 are read`);
        break;
      case 0x95: // FRAME: a length prefix only
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(decodeLong(take(u8())));
        break;
      case 0x8b: // LONG4 (a signed length: need() refuses a negative one)
        push(decodeLong(take(i32())));
        break;
      case 0x49: {
        // INT (text; also True/False as 01/00)
        const text = line();
        if (text === '01') push(true);
        else if (text === '00') push(false);
        else {
          const v = Number.parseInt(text, 10);
          if (Number.isNaN(v)) corrupt(`has INT '${text}' at byte ${opcodeAt}`);
          push(v);
        }
        break;
      }
      case 0x4c: {
        // LONG (text)
        const text = line().replace(/L$/, '');
        if (!/^-?\d+$/.test(text)) corrupt(`has LONG '${text}' at byte ${opcodeAt}`);
        const v = BigInt(text);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const v = Number(line());
        push(v);
        break;
      }
      case 0x58: // BINUNICODE
        push(decoder.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(decoder.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(decoder.decode(take(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        push(
          line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) =>
            String.fromCharCode(Number.parseInt(h, 16)),
          ),
        );
        break;
      case 0x54: // BINSTRING (Python 2 str)
        push(latin1.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(take(u8())));
        break;
      case 0x53: // STRING (text, quoted)
        push(unquote(line()));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(take(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b, c]));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x61: {
        // APPEND
        const item = pop();
        appendItems(top(), [item]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        push(new Set(popMark()));
        break;
      case 0x70: // PUT
        memo.set(Number.parseInt(line(), 10), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET
        push(get(Number.parseInt(line(), 10)));
        break;
      case 0x68: // BINGET
        push(get(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(get(u32()));
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(resolve(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          corrupt(`has STACK_GLOBAL without two strings at byte ${opcodeAt}`);
        push(resolve(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE: only our own functions are ever applied
        const args = pop();
        const callable = pop();
        if (!(args instanceof PyTuple)) corrupt(`has REDUCE without an argument tuple at byte ${opcodeAt}`);
        if (!(callable instanceof PyGlobal) || callable.apply === undefined) {
          const what =
            callable instanceof PyGlobal ? callable.qualifiedName : 'a value that is not a function';
          throw new CrpError(
            'unsafe-content',
            `${source}: the pickle calls ${what}, which would run code; it is not in the allowed set and was not executed`,
            { details: { source, global: what } },
          );
        }
        push(callable.apply((args as PyTuple).items));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) of an allowed class, as an inert stub
        const args = pop();
        const cls = pop();
        push(instantiate(cls, args instanceof PyTuple ? args.items : []));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        const cls = pop();
        push(instantiate(cls, args instanceof PyTuple ? args.items : []));
        break;
      }
      case 0x69: {
        // INST (protocol 0): module, name, then the marked arguments
        const cls = resolve(line(), line());
        push(instantiate(cls, popMark()));
        break;
      }
      case 0x6f: {
        // OBJ (protocol 1): the class is the first marked item
        const items = popMark();
        push(instantiate(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD: __setstate__ / __dict__.update, recorded, never run
        const state = pop();
        const target = top();
        if (target instanceof PyObject) target.state = state;
        else if (target instanceof PyDict) target.attributes = state;
        else if (state !== null) {
          corrupt(`sets the state of a ${target === null ? 'None' : typeof target} at byte ${opcodeAt}`);
        }
        break;
      }
      case 0x50: // PERSID
      case 0x51: {
        // BINPERSID
        const pid = opcode === 0x50 ? line() : pop();
        if (options.persistentLoad === undefined) {
          throw new CrpError(
            'unsupported-format',
            `${source}: the pickle refers to external data (a persistent id), which this reader does not resolve`,
          );
        }
        push(options.persistentLoad(pid));
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84:
        throw new CrpError(
          'unsupported-format',
          `${source}: the pickle uses the copyreg extension registry (${opName()}), which is not read`,
        );
      case 0x97:
      case 0x98:
        throw new CrpError(
          'unsupported-format',
          `${source}: the pickle uses out-of-band buffers (${opName()}), which are not read`,
        );
      default:
        corrupt(`has the unknown opcode 0x${opcode.toString(16).padStart(2, '0')} at byte ${opcodeAt}`);
    }
  }
}
