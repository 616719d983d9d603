import { CrpError, listNames } from '@crp/common';
import { PyDict, PyGlobal, PyObject, PyTuple, unpickle } from './pickle.js';
import { type StateDict, sniffFormat } from './weights-format.js';
import { ZipArchive } from './zip-archive.js';

/** Element types of PyTorch storages, by torch's dtype name. */
export type TorchDtype =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool'
  | 'complex64'
  | 'complex128';

/** torch's storage classes (the pickled `torch.FloatStorage` & co) with their dtype and bytes per element. */
const STORAGE_TYPES: Record<string, { dtype: TorchDtype; itemSize: number }> = {
  FloatStorage: { dtype: 'float32', itemSize: 4 },
  HalfStorage: { dtype: 'float16', itemSize: 2 },
  BFloat16Storage: { dtype: 'bfloat16', itemSize: 2 },
  DoubleStorage: { dtype: 'float64', itemSize: 8 },
  LongStorage: { dtype: 'int64', itemSize: 8 },
  IntStorage: { dtype: 'int32', itemSize: 4 },
  ShortStorage: { dtype: 'int16', itemSize: 2 },
  CharStorage: { dtype: 'int8', itemSize: 1 },
  ByteStorage: { dtype: 'uint8', itemSize: 1 },
  BoolStorage: { dtype: 'bool', itemSize: 1 },
  ComplexFloatStorage: { dtype: 'complex64', itemSize: 8 },
  ComplexDoubleStorage: { dtype: 'complex128', itemSize: 16 },
};

/** The dtypes {@link PthFile.float32} converts. */
export const PTH_FLOAT_DTYPES: readonly TorchDtype[] = ['float32', 'float16', 'bfloat16'];

/** Where one tensor of a {@link PthFile} lies: a strided view of a storage (several tensors may share one). */
export interface PthEntry {
  readonly name: string;
  readonly dtype: TorchDtype;
  readonly shape: readonly number[];
  /** Elements (not bytes) between neighbours along each axis. */
  readonly strides: readonly number[];
  /** First element in the storage. */
  readonly storageOffset: number;
  /** The storage's key: its data is the archive entry `<archive>/data/<key>`. */
  readonly storage: string;
}

/** What the pickle of a `.pth` file held. */
export type PthContent = 'state-dict' | 'module' | 'checkpoint';

interface StorageRef {
  readonly key: string;
  readonly dtype: TorchDtype;
  readonly itemSize: number;
  readonly numel: number;
  readonly storageType: string;
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
  ) {}
}

const SAVE_HINT =
  "To read weights, save the state dict in Python: torch.save(model.state_dict(), 'state_dict.pth').";

/** Keys under which training checkpoints usually keep the model's state dict, in order of preference. */
const CHECKPOINT_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'weights'];

let halfTable: Float32Array | undefined;
/** float32 value of every float16 bit pattern (exact), built once. */
function halfToFloat(): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 0x1f;
      const fraction = h & 0x3ff;
      halfTable[h] =
        exponent === 0
          ? sign * 2 ** -14 * (fraction / 1024)
          : exponent === 31
            ? fraction === 0
              ? sign * Number.POSITIVE_INFINITY
              : Number.NaN
            : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
    }
  }
  return halfTable;
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && strides[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

type Elements = Float32Array | Uint16Array;

/** Copies the strided view (shape, strides, offset) of `src` into the row-major `out`. */
function gather<T extends Elements>(
  src: T,
  out: T,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): T {
  const rank = shape.length;
  if (out.length === 0) return out;
  if (rank === 0) {
    out[0] = src[offset]!;
    return out;
  }
  const inner = shape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  const index = new Array<number>(rank - 1).fill(0);
  let base = offset;
  for (let o = 0; o < out.length; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = src[base + j * innerStride]!;
    // odometer over the outer axes
    for (let axis = rank - 2; axis >= 0; axis--) {
      index[axis]!++;
      base += strides[axis]!;
      if (index[axis]! < shape[axis]!) break;
      base -= strides[axis]! * shape[axis]!;
      index[axis] = 0;
    }
  }
  return out;
}

/**
 * A PyTorch `.pth`/`.pt` file written by `torch.save` (PyTorch >= 1.6: a zip archive with `<archive>/data.pkl`
 * and one entry `<archive>/data/<key>` per storage), read without Python and without executing anything: the
 * pickle runs on a restricted machine that knows `collections.OrderedDict`, torch's tensor/parameter rebuild
 * functions, the storage types and the set/bytes builtins; classes of `torch.nn.modules.*` and
 * `torchvision.models.*` become inert stubs whose state is read. Any other global is an `unsafe-content` error.
 *
 * It holds a state dict (`torch.save(model.state_dict(), f)`), a whole module (`torch.save(model, f)`: the
 * state dict is rebuilt from the module tree's `_parameters` and persistent `_buffers`, keys from the
 * `_modules` nesting) or a checkpoint dict with the state dict under `state_dict`, `model_state_dict`, `model`,
 * ... Tensors may be non-contiguous, have storage offsets, and share storages; float32, float16 and bfloat16
 * are converted to float32.
 */
export class PthFile implements StateDict {
  /** What the pickle held. */
  readonly content: PthContent;
  /** The byte order of the storages (`<archive>/byteorder`; little when absent, as in PyTorch < 2.1). */
  readonly byteOrder: 'little' | 'big';
  private readonly entries: Map<string, PthEntry>;
  private readonly storages = new Map<string, Uint8Array>();

  private constructor(
    private readonly archive: ZipArchive,
    private readonly prefix: string,
    private readonly source: string,
    content: PthContent,
    byteOrder: 'little' | 'big',
    entries: Map<string, PthEntry>,
  ) {
    this.content = content;
    this.byteOrder = byteOrder;
    this.entries = entries;
  }

  /**
   * Parses the bytes of a `.pth` file (kept, not copied). Reads the pickle and checks every tensor against its
   * storage's size; storage data is read (and CRC-checked) when a tensor is first converted.
   *
   * @param source names the file in messages
   * @throws CrpError `unsupported-format` for the legacy (pre-1.6) format, TorchScript archives and files that
   *   are no torch.save zip; `unsafe-content` for a pickle that needs a global outside the allowed set;
   *   `corrupt-file` for truncated or damaged data
   */
  static parse(bytes: Uint8Array, source = 'the .pth data'): PthFile {
    refuseOtherFormats(bytes, source);
    const archive = ZipArchive.parse(bytes, source);
    const { pickleName, prefix } = findPickle(archive, source);
    const byteOrder = readByteOrder(archive, prefix, source);
    const root = runPickle(archive, pickleName, prefix, source);
    const { content, tensors } = collectTensors(root, source, bytes.byteLength);
    const entries = new Map<string, PthEntry>();
    for (const [name, t] of tensors) {
      entries.set(name, {
        name,
        dtype: t.storage.dtype,
        shape: t.shape,
        strides: t.strides,
        storageOffset: t.offset,
        storage: t.storage.key,
      });
    }
    return new PthFile(archive, prefix, source, content, byteOrder, entries);
  }

  /** Tensor names in state-dict order. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * Dtype, shape, strides and storage of a tensor.
   *
   * @throws CrpError `not-found` for an unknown name (the message lists the names)
   */
  entry(name: string): PthEntry {
    const e = this.entries.get(name);
    if (e === undefined) {
      throw new CrpError(
        'not-found',
        `no tensor '${name}' in ${this.source}; it has: ${listNames(this.names, 30)}`,
        {
          details: { source: this.source, name },
        },
      );
    }
    return e;
  }

  /**
   * A tensor's values as float32 in row-major order (strides and offsets applied): float32 as is, float16 and
   * bfloat16 widened exactly. By default a new array; `{ copy: false }` returns a view into the file's bytes
   * where the tensor is a contiguous, aligned float32 block (do not modify it).
   *
   * @throws CrpError `unsupported-format` for other dtypes (the message names it); `corrupt-file` when the
   *   storage's data is damaged
   */
  float32(name: string, options: { copy?: boolean } = {}): Float32Array {
    const e = this.entry(name);
    if (!PTH_FLOAT_DTYPES.includes(e.dtype)) {
      throw new CrpError(
        'unsupported-format',
        `tensor '${name}' of ${this.source} is ${e.dtype}; float32, float16 and bfloat16 tensors are read`,
        { details: { source: this.source, name, dtype: e.dtype } },
      );
    }
    const numel = e.shape.reduce((a, b) => a * b, 1);
    const contiguous = isContiguous(e.shape, e.strides);
    const bytes = this.storageBytes(e.storage, e.dtype === 'float32' ? 4 : 2);
    if (e.dtype === 'float32') {
      if (contiguous) {
        const slice = bytes.subarray(e.storageOffset * 4, (e.storageOffset + numel) * 4);
        if (options.copy === false && slice.byteOffset % 4 === 0) {
          return new Float32Array(slice.buffer, slice.byteOffset, numel);
        }
        const out = new Float32Array(numel);
        new Uint8Array(out.buffer).set(slice);
        return out;
      }
      return gather(
        elements(bytes, 4) as Float32Array,
        new Float32Array(numel),
        e.shape,
        e.strides,
        e.storageOffset,
      );
    }
    const all = elements(bytes, 2) as Uint16Array;
    const halves = contiguous
      ? all.subarray(e.storageOffset, e.storageOffset + numel)
      : gather(all, new Uint16Array(numel), e.shape, e.strides, e.storageOffset);
    const out = new Float32Array(numel);
    if (e.dtype === 'bfloat16') {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) bits[i] = halves[i]! << 16;
    } else {
      const table = halfToFloat();
      for (let i = 0; i < numel; i++) out[i] = table[halves[i]!]!;
    }
    return out;
  }

  /** The little-endian bytes of a storage (read and CRC-checked once; byte-swapped for big-endian files). */
  private storageBytes(key: string, itemSize: number): Uint8Array {
    let bytes = this.storages.get(key);
    if (bytes === undefined) {
      bytes = this.archive.read(`${this.prefix}data/${key}`);
      if (this.byteOrder === 'big' && itemSize > 1) {
        const swapped = new Uint8Array(bytes.length);
        for (let i = 0; i + itemSize <= bytes.length; i += itemSize)
          for (let j = 0; j < itemSize; j++) swapped[i + j] = bytes[i + itemSize - 1 - j]!;
        bytes = swapped;
      }
      this.storages.set(key, bytes);
    }
    return bytes;
  }
}

const TORCH_SCRIPT = (source: string) =>
  `${source} is a TorchScript archive (torch.jit.save), not a torch.save file. In Python: torch.save(torch.jit.load(path).state_dict(), 'state_dict.pth').`;

/** Step 1 of {@link PthFile.parse}: refuses bytes that are not a torch.save zip (the legacy format says how to
 * re-save). */
function refuseOtherFormats(bytes: Uint8Array, source: string): void {
  const format = sniffFormat(bytes);
  if (format === 'pth-legacy') {
    throw new CrpError(
      'unsupported-format',
      `${source} is in torch.save's legacy format (PyTorch < 1.6, or _use_new_zipfile_serialization=False), which is not read. ` +
        "Re-save it with PyTorch >= 1.6: sd = torch.load(path, map_location='cpu'); torch.save(sd, 'state_dict.pth') " +
        "(the default zip format), or as safetensors: safetensors.torch.save_file(sd, 'model.safetensors').",
      { details: { source } },
    );
  }
  if (format !== 'pth') {
    throw new CrpError(
      'unsupported-format',
      `${source} is not a file written by torch.save (no zip archive${format === 'safetensors' ? '; it is a safetensors file' : ''}); valid: .pth/.pt files of PyTorch >= 1.6`,
      { details: { source } },
    );
  }
}

/** Step 2: the archive's `<prefix>data.pkl`; a TorchScript archive or a zip without it is refused. */
function findPickle(archive: ZipArchive, source: string): { pickleName: string; prefix: string } {
  const pickles = archive.names.filter((n) => /^([^/]*\/)?data\.pkl$/.test(n));
  if (pickles.length === 0) {
    const torchScript = archive.names.some((n) => /(^|\/)constants\.pkl$/.test(n) || /(^|\/)code\//.test(n));
    throw new CrpError(
      'unsupported-format',
      torchScript
        ? TORCH_SCRIPT(source)
        : `${source} is a zip archive without data.pkl, so not a torch.save file (entries: ${archive.names.slice(0, 8).join(', ')})`,
      { details: { source } },
    );
  }
  const pickleName = pickles[0]!;
  const prefix = pickleName.slice(0, pickleName.length - 'data.pkl'.length);
  if (archive.has(`${prefix}constants.pkl`)) {
    throw new CrpError('unsupported-format', TORCH_SCRIPT(source), { details: { source } });
  }
  return { pickleName, prefix };
}

/** Step 3: the storages' byte order (`<prefix>byteorder`; little when absent, as in PyTorch < 2.1). */
function readByteOrder(archive: ZipArchive, prefix: string, source: string): 'little' | 'big' {
  if (!archive.has(`${prefix}byteorder`)) return 'little';
  const text = new TextDecoder().decode(archive.read(`${prefix}byteorder`)).trim();
  if (text !== 'little' && text !== 'big') {
    throw new CrpError('corrupt-file', `${source}: its byteorder entry says '${text}'; valid: little, big`);
  }
  return text;
}

/** Step 4: runs the pickle on the restricted machine with torch's rebuild functions and storage types. */
function runPickle(archive: ZipArchive, pickleName: string, prefix: string, source: string): unknown {
  const where = `${source} (${pickleName})`;
  const rebuildTensor = tensorRebuilder(where, archive.byteLength);
  const constants: Record<string, unknown> = {
    'torch.Tensor': 'torch.Tensor',
    'torch.nn.parameter.Parameter': 'torch.nn.parameter.Parameter',
  };
  for (const [name, info] of Object.entries(STORAGE_TYPES)) {
    constants[`torch.${name}`] = { ...info, storageType: `torch.${name}` };
  }
  return unpickle(archive.read(pickleName), {
    source: where,
    constants,
    functions: {
      'collections.OrderedDict': orderedDict,
      'torch._utils._rebuild_tensor_v2': rebuildTensor,
      'torch._utils._rebuild_tensor': rebuildTensor,
      'torch._utils._rebuild_parameter': (args) => args[0],
      'torch._utils._rebuild_parameter_with_state': (args) => args[0],
      'torch._tensor._rebuild_from_type_v2': (args) => {
        const [fn, , inner] = args;
        if (!(fn instanceof PyGlobal) || fn.apply === undefined || !(inner instanceof PyTuple)) {
          throw new CrpError('corrupt-file', `${where}: _rebuild_from_type_v2 without a rebuild function`);
        }
        return fn.apply(inner.items);
      },
      'builtins.set': (args) => new Set(Array.isArray(args[0]) ? args[0] : []),
      'builtins.frozenset': (args) => new Set(Array.isArray(args[0]) ? args[0] : []),
      '_codecs.encode': (args) => {
        const text = typeof args[0] === 'string' ? args[0] : '';
        return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
      },
    },
    classModules: ['torch.nn.modules', 'torchvision.models'],
    persistentLoad: storageLoader(archive, prefix, source, where),
    allowed:
      'collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter, torch._tensor._rebuild_from_type_v2, ' +
      'the torch.*Storage types, builtins.set / frozenset, _codecs.encode, and classes of torch.nn.modules.* and torchvision.models.* as plain data',
    unsafeHint: SAVE_HINT,
  });
}

/** `collections.OrderedDict(pairs)`: a dict of the (key, value) tuples given. */
function orderedDict(args: readonly unknown[]): PyDict {
  const d = new PyDict('collections.OrderedDict');
  const pairs = args[0];
  if (Array.isArray(pairs)) {
    for (const p of pairs) if (p instanceof PyTuple) d.map.set(p.items[0], p.items[1]);
  }
  return d;
}

/**
 * torch's persistent ids `('storage', <storage type>, key, location, numel)`: one {@link StorageRef} per key,
 * checked against the size of its archive entry, so that no storage claims more bytes than the file holds.
 */
function storageLoader(
  archive: ZipArchive,
  prefix: string,
  source: string,
  where: string,
): (pid: unknown) => StorageRef {
  const storageRefs = new Map<string, StorageRef>();
  return (pid) => {
    const items = pid instanceof PyTuple ? pid.items : [];
    const [tag, type, key, , numel] = items;
    if (
      tag !== 'storage' ||
      typeof type !== 'object' ||
      type === null ||
      !('dtype' in type) ||
      (typeof key !== 'string' && typeof key !== 'number') ||
      typeof numel !== 'number'
    ) {
      throw new CrpError(
        'corrupt-file',
        `${where}: a persistent id is not ('storage', <storage type>, key, location, numel)`,
      );
    }
    const k = String(key);
    let ref = storageRefs.get(k);
    if (ref === undefined) {
      const info = type as { dtype: TorchDtype; itemSize: number; storageType: string };
      ref = { key: k, dtype: info.dtype, itemSize: info.itemSize, numel, storageType: info.storageType };
      const entry = archive.entry(`${prefix}data/${k}`);
      if (entry === undefined) {
        throw new CrpError(
          'corrupt-file',
          `${where} refers to storage '${k}', but the archive has no ${prefix}data/${k}`,
        );
      }
      if (entry.size < numel * ref.itemSize) {
        throw new CrpError(
          'corrupt-file',
          `${source}: storage '${k}' (${numel} ${ref.dtype} elements) needs ${numel * ref.itemSize} bytes but ${prefix}data/${k} has ${entry.size}`,
        );
      }
      storageRefs.set(k, ref);
    }
    return ref;
  };
}

/** A tuple (or list) of non-negative integers: a tensor's size or stride. */
function naturals(v: unknown, what: string, where: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : undefined;
  if (items === undefined || !items.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw new CrpError(
      'corrupt-file',
      `${where}: a tensor's ${what} is not a tuple of non-negative integers`,
    );
  }
  return items as number[];
}

/**
 * torch's `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a strided view, checked to lie inside its
 * storage. A view may repeat storage elements (stride 0, as `expand` makes), but only while its float32 copy is
 * no larger than the file (`fileBytes`): a broadcast of 10^18 elements is refused before anything is allocated.
 */
function tensorRebuilder(where: string, fileBytes: number): (args: readonly unknown[]) => TensorRef {
  return (args) => {
    const [storage, offset, size, stride] = args;
    if (
      typeof storage !== 'object' ||
      storage === null ||
      !('key' in storage) ||
      !Number.isInteger(offset) ||
      (offset as number) < 0
    ) {
      throw new CrpError('corrupt-file', `${where}: a tensor is rebuilt without a storage and an offset`);
    }
    const ref = storage as StorageRef;
    const shape = naturals(size, 'size', where);
    const strides = naturals(stride, 'stride', where);
    if (strides.length !== shape.length) {
      throw new CrpError(
        'corrupt-file',
        `${where}: a tensor has ${shape.length} sizes but ${strides.length} strides`,
      );
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel > ref.numel && numel * 4 > fileBytes) {
      throw new CrpError(
        'corrupt-file',
        `${where}: a tensor of shape [${shape.join(', ')}] (${numel} elements) repeats the ${ref.numel} elements of storage '${ref.key}' into more than the file's ${fileBytes} bytes`,
      );
    }
    // the last element the view reads must lie in the storage (an empty tensor reads none)
    const last = (offset as number) + shape.reduce((s, d, i) => s + (d - 1) * strides[i]!, 0);
    if (numel > 0 && last >= ref.numel) {
      throw new CrpError(
        'corrupt-file',
        `${where}: a tensor of shape [${shape.join(', ')}] at offset ${offset} reaches element ${last} of storage '${ref.key}', which has ${ref.numel}`,
      );
    }
    return new TensorRef(ref, offset as number, shape, strides);
  };
}

/** The storage's elements as a typed array: a view when aligned, else an aligned copy. */
function elements(bytes: Uint8Array, itemSize: 2 | 4): Elements {
  const n = Math.floor(bytes.byteLength / itemSize);
  let aligned = bytes;
  if (bytes.byteOffset % itemSize !== 0) {
    aligned = new Uint8Array(n * itemSize);
    aligned.set(bytes.subarray(0, n * itemSize));
  }
  return itemSize === 4
    ? new Float32Array(aligned.buffer, aligned.byteOffset, n)
    : new Uint16Array(aligned.buffer, aligned.byteOffset, n);
}

function describe(value: unknown): string {
  if (value instanceof PyObject) return `an object of ${value.className}`;
  if (value instanceof PyDict)
    return `a dict with keys ${[...value.map.keys()].slice(0, 8).map(String).join(', ')}`;
  if (value instanceof PyTuple) return 'a tuple';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof TensorRef) return 'a single tensor';
  return value === null ? 'None' : `a ${typeof value}`;
}

/** The tensors of a state dict (values that are not tensors, e.g. None, are skipped), or undefined. */
function stateDictOf(d: PyDict): Map<string, TensorRef> | undefined {
  const tensors = new Map<string, TensorRef>();
  for (const [k, v] of d.map) {
    if (v instanceof TensorRef && typeof k === 'string') tensors.set(k, v);
    else if (v !== null) return undefined;
  }
  return tensors.size > 0 ? tensors : undefined;
}

/** A step of the walk over a module tree: visit a module, or leave one (it is no longer an ancestor). */
type ModuleStep = { module: PyObject; prefix: string } | { leave: PyObject };

/**
 * The state dict of an nn.Module stub, as module.state_dict() would give it: its `_parameters`, persistent
 * `_buffers`, then its `_modules` depth first. The walk keeps its own stack (a deep tree cannot overflow the call
 * stack), refuses a module that contains itself, and stops after `budget` modules (the file's size: sub-modules
 * shared in a diamond chain would otherwise give exponentially many names).
 */
function moduleStateDict(root: PyObject, source: string, budget: number): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const ancestors = new Set<PyObject>();
  const steps: ModuleStep[] = [{ module: root, prefix: '' }];
  for (let visits = 0; steps.length > 0; ) {
    const step = steps.pop()!;
    if ('leave' in step) {
      ancestors.delete(step.leave);
      continue;
    }
    const { module: m, prefix } = step;
    const name = prefix === '' ? 'the pickled object' : `'${prefix.slice(0, -1)}'`;
    if (ancestors.has(m)) {
      throw new CrpError(
        'corrupt-file',
        `${source}: the module tree contains itself: ${name} is its own ancestor`,
      );
    }
    if (++visits > budget) {
      throw new CrpError(
        'corrupt-file',
        `${source}: its module tree names more than ${budget} modules (it shares sub-modules in a chain), more than a file of ${budget} bytes holds`,
      );
    }
    const state = m.state instanceof PyTuple ? m.state.items[0] : m.state;
    if (!(state instanceof PyDict) || !(state.map.get('_parameters') instanceof PyDict)) {
      throw new CrpError(
        'unsupported-format',
        `${source}: ${name} (${m.className}) is not an nn.Module (no _parameters). ${SAVE_HINT}`,
      );
    }
    const dict = (key: string) => {
      const v = state.map.get(key);
      return v instanceof PyDict ? v.map : new Map<unknown, unknown>();
    };
    const skip = state.map.get('_non_persistent_buffers_set');
    for (const [k, v] of dict('_parameters')) if (v instanceof TensorRef) out.set(`${prefix}${String(k)}`, v);
    for (const [k, v] of dict('_buffers')) {
      if (v instanceof TensorRef && !(skip instanceof Set && skip.has(k)))
        out.set(`${prefix}${String(k)}`, v);
    }
    ancestors.add(m);
    steps.push({ leave: m });
    const children = [...dict('_modules')].filter(([, v]) => v instanceof PyObject).reverse();
    for (const [k, v] of children) steps.push({ module: v as PyObject, prefix: `${prefix}${String(k)}.` });
  }
  return out;
}

/** Step 5 of {@link PthFile.parse}: the tensors of the state dict, module or checkpoint the pickle held. */
function collectTensors(
  root: unknown,
  source: string,
  budget: number,
): { content: PthContent; tensors: Map<string, TensorRef> } {
  if (root instanceof PyObject) return { content: 'module', tensors: moduleStateDict(root, source, budget) };
  if (root instanceof PyDict) {
    const direct = stateDictOf(root);
    if (direct !== undefined) return { content: 'state-dict', tensors: direct };
    // a checkpoint: {'epoch': ..., 'state_dict': {...}, 'optimizer': {...}}
    const candidates = [...root.map.entries()].filter(
      ([, v]) => (v instanceof PyDict && stateDictOf(v) !== undefined) || v instanceof PyObject,
    );
    const chosen =
      CHECKPOINT_KEYS.map((k) => candidates.find(([key]) => key === k)).find((c) => c !== undefined) ??
      (candidates.length === 1 ? candidates[0] : undefined);
    if (chosen !== undefined) {
      const v = chosen[1];
      return {
        content: 'checkpoint',
        tensors: v instanceof PyObject ? moduleStateDict(v, source, budget) : stateDictOf(v as PyDict)!,
      };
    }
    throw new CrpError(
      'unsupported-format',
      `${source} holds a dict whose entries are not tensors (keys: ${[...root.map.keys()].slice(0, 12).map(String).join(', ')}) and no single state dict inside it${candidates.length > 1 ? ` (several candidates: ${candidates.map(([k]) => String(k)).join(', ')})` : ''}. ${SAVE_HINT}`,
      { details: { source } },
    );
  }
  throw new CrpError(
    'unsupported-format',
    `${source} holds ${describe(root)}, not a state dict or an nn.Module. ${SAVE_HINT}`,
    {
      details: { source },
    },
  );
}
