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
  return new PickleMachine(bytes, options).run();
}

const STOP = 0x2e;

/** The machine's state: the bytes and where it reads, the stack (and the stacks MARK put aside), the memo. */
class PickleMachine {
  readonly view: DataView;
  readonly n: number;
  readonly decoder = new TextDecoder('utf-8');
  readonly latin1 = new TextDecoder('latin1');
  pos = 0;
  opcodeAt = 0;
  opcode = 0;
  stack: unknown[] = [];
  readonly metastack: unknown[][] = [];
  readonly memo = new Map<number, unknown>();

  constructor(
    readonly bytes: Uint8Array,
    readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.n = bytes.byteLength;
  }

  /** Runs opcode after opcode until STOP, whose value is the result. */
  run(): unknown {
    for (;;) {
      if (this.pos >= this.n)
        this.corrupt(`ends at byte ${this.n} before its STOP opcode (the data is truncated)`);
      this.opcodeAt = this.pos;
      this.opcode = this.bytes[this.pos++]!;
      if (this.opcode === STOP) return this.pop();
      const op = OPCODES[this.opcode];
      if (op === undefined) this.unknownOpcode();
      else op(this);
    }
  }

  corrupt(what: string): never {
    const { source } = this.options;
    throw new CrpError('corrupt-file', `${source}: the pickle ${what}`, {
      details: { source, offset: this.opcodeAt },
    });
  }

  opName(): string {
    return OPCODE_NAMES[this.opcode] ?? `0x${this.opcode.toString(16)}`;
  }

  /** An opcode outside the table: one that needs more than data, or none at all. */
  unknownOpcode(): never {
    const { source } = this.options;
    if (this.opcode >= 0x82 && this.opcode <= 0x84) {
      throw new CrpError(
        'unsupported-format',
        `${source}: the pickle uses the copyreg extension registry (${this.opName()}), which is not read`,
      );
    }
    if (this.opcode === 0x97 || this.opcode === 0x98) {
      throw new CrpError(
        'unsupported-format',
        `${source}: the pickle uses out-of-band buffers (${this.opName()}), which are not read`,
      );
    }
    return this.corrupt(
      `has the unknown opcode 0x${this.opcode.toString(16).padStart(2, '0')} at byte ${this.opcodeAt}`,
    );
  }

  // reading arguments

  need(k: number): void {
    // a negative length would move backwards and re-read the same opcode for ever
    if (k < 0) this.corrupt(`has a negative ${this.opName()} length at byte ${this.opcodeAt}`);
    if (this.pos + k > this.n) {
      this.corrupt(`ends inside ${this.opName()} at byte ${this.opcodeAt} (it needs ${k} more bytes)`);
    }
  }

  take(k: number): Uint8Array {
    this.need(k);
    const out = this.bytes.subarray(this.pos, this.pos + k);
    this.pos += k;
    return out;
  }

  /** Moves past a field of `k` bytes and returns where it starts. */
  field(k: number): number {
    this.need(k);
    this.pos += k;
    return this.pos - k;
  }

  u8 = (): number => this.bytes[this.field(1)]!;
  u16 = (): number => this.view.getUint16(this.field(2), true);
  i32 = (): number => this.view.getInt32(this.field(4), true);
  u32 = (): number => this.view.getUint32(this.field(4), true);

  u64(): number {
    const v = this.view.getBigUint64(this.field(8), true);
    if (v > BigInt(this.n)) {
      this.corrupt(
        `has a ${this.opName()} length of ${v} bytes at byte ${this.opcodeAt}, beyond its ${this.n} bytes`,
      );
    }
    return Number(v);
  }

  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.corrupt(`ends inside ${this.opName()} at byte ${this.opcodeAt} (no end of line)`);
    const text = this.latin1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  }

  // the stack and the memo

  // a method, not stack.push: `stack.push(popMark())` would push onto the stack that popMark replaces
  push(v: unknown): void {
    this.stack.push(v);
  }

  pop(): unknown {
    if (this.stack.length === 0)
      this.corrupt(`pops an empty stack at ${this.opName()} (byte ${this.opcodeAt})`);
    return this.stack.pop();
  }

  top(): unknown {
    if (this.stack.length === 0)
      this.corrupt(`reads an empty stack at ${this.opName()} (byte ${this.opcodeAt})`);
    return this.stack[this.stack.length - 1];
  }

  popMark(): unknown[] {
    const items = this.stack;
    const outer = this.metastack.pop();
    if (outer === undefined) this.corrupt(`has ${this.opName()} without a MARK (byte ${this.opcodeAt})`);
    this.stack = outer!;
    return items;
  }

  get(key: number): unknown {
    if (!this.memo.has(key)) {
      this.corrupt(`refers to memo entry ${key}, which was never stored (byte ${this.opcodeAt})`);
    }
    return this.memo.get(key);
  }

  // containers

  setItems(target: unknown, items: readonly unknown[]): void {
    if (!(target instanceof PyDict)) this.corrupt(`sets items on a non-dict at byte ${this.opcodeAt}`);
    if (items.length % 2 !== 0)
      this.corrupt(`has an odd number of items for SETITEMS at byte ${this.opcodeAt}`);
    for (let i = 0; i < items.length; i += 2) (target as PyDict).map.set(items[i], items[i + 1]);
  }

  appendItems(target: unknown, items: readonly unknown[]): void {
    if (Array.isArray(target)) for (const item of items) target.push(item);
    else if (target instanceof Set) for (const item of items) target.add(item);
    else this.corrupt(`appends to a non-list at byte ${this.opcodeAt}`);
  }

  // globals, through the allow-list only

  resolve(rawModule: string, name: string): unknown {
    const { options } = this;
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
      `${options.source} refers to the Python global '${qualified}', which is outside the allowed set, so it was not loaded (nothing in the file was executed). ` +
        `Allowed: ${allowed}.${options.unsafeHint === undefined ? '' : ` ${options.unsafeHint}`}`,
      { details: { source: options.source, global: qualified } },
    );
  }

  instantiate(cls: unknown, args: readonly unknown[]): PyObject {
    if (!(cls instanceof PyGlobal) || cls.kind !== 'class') {
      const what = cls instanceof PyGlobal ? cls.qualifiedName : typeof cls;
      const { source } = this.options;
      throw new CrpError(
        'unsafe-content',
        `${source}: the pickle creates an object of ${what}, which is not an allowed class; nothing was executed`,
        { details: { source, global: what } },
      );
    }
    return new PyObject(cls.qualifiedName, args);
  }

  /** REDUCE: only our own functions are ever applied. */
  reduce(): void {
    const args = this.pop();
    const callable = this.pop();
    if (!(args instanceof PyTuple))
      this.corrupt(`has REDUCE without an argument tuple at byte ${this.opcodeAt}`);
    if (!(callable instanceof PyGlobal) || callable.apply === undefined) {
      const what = callable instanceof PyGlobal ? callable.qualifiedName : 'a value that is not a function';
      const { source } = this.options;
      throw new CrpError(
        'unsafe-content',
        `${source}: the pickle calls ${what}, which would run code; it is not in the allowed set and was not executed`,
        { details: { source, global: what } },
      );
    }
    this.push(callable.apply((args as PyTuple).items));
  }

  /** BUILD: __setstate__ / __dict__.update, recorded, never run. */
  build(): void {
    const state = this.pop();
    const target = this.top();
    if (target instanceof PyObject) target.state = state;
    else if (target instanceof PyDict) target.attributes = state;
    else if (state !== null) {
      this.corrupt(
        `sets the state of a ${target === null ? 'None' : typeof target} at byte ${this.opcodeAt}`,
      );
    }
  }

  /** PERSID / BINPERSID: resolved by the caller (torch: storages), or refused. */
  persistent(): void {
    const pid = this.opcode === 0x50 ? this.line() : this.pop();
    if (this.options.persistentLoad === undefined) {
      throw new CrpError(
        'unsupported-format',
        `${this.options.source}: the pickle refers to external data (a persistent id), which this reader does not resolve`,
      );
    }
    this.push(this.options.persistentLoad(pid));
  }
}

type Op = (m: PickleMachine) => void;

/** A protocol-0 INT: decimal text, or True/False as 01/00. */
function intText(m: PickleMachine): void {
  const text = m.line();
  if (text === '01') m.push(true);
  else if (text === '00') m.push(false);
  else {
    const v = Number.parseInt(text, 10);
    if (Number.isNaN(v)) m.corrupt(`has INT '${text}' at byte ${m.opcodeAt}`);
    m.push(v);
  }
}

/** A protocol-0 LONG: decimal text with an optional L, a number up to 2^53 and a bigint beyond. */
function longText(m: PickleMachine): void {
  const text = m.line().replace(/L$/, '');
  if (!/^-?\d+$/.test(text)) m.corrupt(`has LONG '${text}' at byte ${m.opcodeAt}`);
  const v = BigInt(text);
  m.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
}

/** Protocol, framing, marks and the stack itself. */
const CONTROL_OPS: Record<number, Op> = {
  128: (m) => {
    // PROTO
    if (m.u8() > 5) m.corrupt(`uses protocol ${m.bytes[m.pos - 1]}; protocols 0 to 5 are read`);
  },
  149: (m) => void m.u64(), // FRAME: a length prefix only
  40: (m) => {
    // MARK
    m.metastack.push(m.stack);
    m.stack = [];
  },
  48: (m) => {
    // POP
    if (m.stack.length > 0) m.stack.pop();
    else m.popMark();
  },
  49: (m) => void m.popMark(), // POP_MARK
  50: (m) => m.push(m.top()), // DUP
};

/** None, booleans, integers and floats. */
const NUMBER_OPS: Record<number, Op> = {
  78: (m) => m.push(null), // NONE
  136: (m) => m.push(true), // NEWTRUE
  137: (m) => m.push(false), // NEWFALSE
  74: (m) => m.push(m.i32()), // BININT
  75: (m) => m.push(m.u8()), // BININT1
  77: (m) => m.push(m.u16()), // BININT2
  138: (m) => m.push(decodeLong(m.take(m.u8()))), // LONG1
  139: (m) => m.push(decodeLong(m.take(m.i32()))), // LONG4 (a signed length: need() refuses a negative one)
  73: intText, // INT
  76: longText, // LONG
  71: (m) => {
    // BINFLOAT (big-endian double)
    m.need(8);
    m.push(m.view.getFloat64(m.pos, false));
    m.pos += 8;
  },
  70: (m) => m.push(Number(m.line())), // FLOAT (text)
};

/** Strings (unicode and Python 2 str) and bytes. */
const TEXT_OPS: Record<number, Op> = {
  88: (m) => m.push(m.decoder.decode(m.take(m.u32()))), // BINUNICODE
  140: (m) => m.push(m.decoder.decode(m.take(m.u8()))), // SHORT_BINUNICODE
  141: (m) => m.push(m.decoder.decode(m.take(m.u64()))), // BINUNICODE8
  86: (m) =>
    // UNICODE (raw-unicode-escape text)
    m.push(
      m.line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
    ),
  84: (m) => m.push(m.latin1.decode(m.take(m.i32()))), // BINSTRING (Python 2 str)
  85: (m) => m.push(m.latin1.decode(m.take(m.u8()))), // SHORT_BINSTRING
  83: (m) => m.push(unquote(m.line())), // STRING (text, quoted)
  66: (m) => m.push(m.take(m.u32()).slice()), // BINBYTES
  67: (m) => m.push(m.take(m.u8()).slice()), // SHORT_BINBYTES
  142: (m) => m.push(m.take(m.u64()).slice()), // BINBYTES8
  150: (m) => m.push(m.take(m.u64()).slice()), // BYTEARRAY8
};

/** Tuples, lists, dicts and sets, and adding to them. */
const CONTAINER_OPS: Record<number, Op> = {
  41: (m) => m.push(new PyTuple([])), // EMPTY_TUPLE
  116: (m) => m.push(new PyTuple(m.popMark())), // TUPLE
  133: (m) => m.push(new PyTuple([m.pop()])), // TUPLE1
  134: (m) => {
    // TUPLE2
    const b = m.pop();
    const a = m.pop();
    m.push(new PyTuple([a, b]));
  },
  135: (m) => {
    // TUPLE3
    const c = m.pop();
    const b = m.pop();
    const a = m.pop();
    m.push(new PyTuple([a, b, c]));
  },
  93: (m) => m.push([]), // EMPTY_LIST
  108: (m) => m.push(m.popMark()), // LIST
  97: (m) => {
    // APPEND
    const item = m.pop();
    m.appendItems(m.top(), [item]);
  },
  101: (m) => {
    // APPENDS
    const items = m.popMark();
    m.appendItems(m.top(), items);
  },
  125: (m) => m.push(new PyDict()), // EMPTY_DICT
  100: (m) => {
    // DICT
    const d = new PyDict();
    m.setItems(d, m.popMark());
    m.push(d);
  },
  115: (m) => {
    // SETITEM
    const value = m.pop();
    const key = m.pop();
    m.setItems(m.top(), [key, value]);
  },
  117: (m) => {
    // SETITEMS
    const items = m.popMark();
    m.setItems(m.top(), items);
  },
  143: (m) => m.push(new Set()), // EMPTY_SET
  144: (m) => {
    // ADDITEMS
    const items = m.popMark();
    m.appendItems(m.top(), items);
  },
  145: (m) => m.push(new Set(m.popMark())), // FROZENSET
};

/** The memo: storing and fetching values by key. */
const MEMO_OPS: Record<number, Op> = {
  112: (m) => void m.memo.set(Number.parseInt(m.line(), 10), m.top()), // PUT
  113: (m) => void m.memo.set(m.u8(), m.top()), // BINPUT
  114: (m) => void m.memo.set(m.u32(), m.top()), // LONG_BINPUT
  148: (m) => void m.memo.set(m.memo.size, m.top()), // MEMOIZE
  103: (m) => m.push(m.get(Number.parseInt(m.line(), 10))), // GET
  104: (m) => m.push(m.get(m.u8())), // BINGET
  106: (m) => m.push(m.get(m.u32())), // LONG_BINGET
};

/** Globals, calls, objects and their state, persistent ids: through the allow-list only. */
const OBJECT_OPS: Record<number, Op> = {
  99: (m) => {
    // GLOBAL
    const module = m.line();
    const name = m.line();
    m.push(m.resolve(module, name));
  },
  147: (m) => {
    // STACK_GLOBAL
    const name = m.pop();
    const module = m.pop();
    if (typeof module !== 'string' || typeof name !== 'string') {
      m.corrupt(`has STACK_GLOBAL without two strings at byte ${m.opcodeAt}`);
    }
    m.push(m.resolve(module as string, name as string));
  },
  82: (m) => m.reduce(), // REDUCE
  129: (m) => {
    // NEWOBJ: cls.__new__(cls, *args) of an allowed class, as an inert stub
    const args = m.pop();
    const cls = m.pop();
    m.push(m.instantiate(cls, args instanceof PyTuple ? args.items : []));
  },
  146: (m) => {
    // NEWOBJ_EX
    m.pop(); // kwargs
    const args = m.pop();
    const cls = m.pop();
    m.push(m.instantiate(cls, args instanceof PyTuple ? args.items : []));
  },
  105: (m) => {
    // INST (protocol 0): module, name, then the marked arguments
    const cls = m.resolve(m.line(), m.line());
    m.push(m.instantiate(cls, m.popMark()));
  },
  111: (m) => {
    // OBJ (protocol 1): the class is the first marked item
    const items = m.popMark();
    m.push(m.instantiate(items[0], items.slice(1)));
  },
  98: (m) => m.build(), // BUILD
  80: (m) => m.persistent(), // PERSID
  81: (m) => m.persistent(), // BINPERSID
};

/** Every opcode the machine runs (STOP ends the run), by byte. */
const OPCODES: Record<number, Op> = {
  ...CONTROL_OPS,
  ...NUMBER_OPS,
  ...TEXT_OPS,
  ...CONTAINER_OPS,
  ...MEMO_OPS,
  ...OBJECT_OPS,
};
