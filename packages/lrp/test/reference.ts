/**
 * Independent float64 reference of the LRP formulas in vendor/reference/README.md ("Rule definitions"),
 * written as plain loops over flat NHWC arrays of one sample. Nothing here uses TF.js or src/.
 *
 * A linear layer is described by `Lin`: `forward(x, W, b)` = f(x; W, b) and `back(W, g)` = the transpose
 * of x -> f(x; W, 0) applied to g. Kernels use the TF.js layouts ([in, out] for Dense, [kh, kw, in, out] for
 * Conv2D, [kh, kw, in, multiplier] for DepthwiseConv2D).
 */
export type F = Float64Array;

export const f64 = (a: ArrayLike<number>): F => Float64Array.from(a);
const mapA = (a: F, fn: (v: number, i: number) => number): F => a.map(fn);
export const pos = (a: F): F => mapA(a, (v) => Math.max(v, 0));
export const neg = (a: F): F => mapA(a, (v) => Math.min(v, 0));
export const add = (a: F, b: F): F => mapA(a, (v, i) => v + b[i]!);
export const sub = (a: F, b: F): F => mapA(a, (v, i) => v - b[i]!);
export const mul = (a: F, b: F): F => mapA(a, (v, i) => v * b[i]!);
export const scale = (a: F, s: number): F => mapA(a, (v) => v * s);
export const square = (a: F): F => mapA(a, (v) => v * v);
export const ones = (n: number): F => new Float64Array(n).fill(1);
export const filled = (n: number, v: number): F => new Float64Array(n).fill(v);
export const relu = pos;

/** zennit's stabiliser: z + eps * sign0(z), sign0(0) = +1. */
export const stab = (z: number, eps: number): number => (z >= 0 ? z + eps : z - eps);
/** R / stab(z) elementwise. */
export const divStab = (r: F, z: F, eps: number): F => mapA(r, (v, j) => v / stab(z[j]!, eps));

export interface Lin {
  nIn: number;
  nOut: number;
  forward(x: F, w: F, b: F | null): F;
  back(w: F, g: F): F;
}

export function denseLin(nIn: number, nOut: number): Lin {
  return {
    nIn,
    nOut,
    forward(x, w, b) {
      const y = new Float64Array(nOut);
      for (let j = 0; j < nOut; j++) {
        let s = b === null ? 0 : b[j]!;
        for (let i = 0; i < nIn; i++) s += x[i]! * w[i * nOut + j]!;
        y[j] = s;
      }
      return y;
    },
    back(w, g) {
      const x = new Float64Array(nIn);
      for (let i = 0; i < nIn; i++) {
        let s = 0;
        for (let j = 0; j < nOut; j++) s += w[i * nOut + j]! * g[j]!;
        x[i] = s;
      }
      return x;
    },
  };
}

/** TF's window geometry along one axis: [padding before, output size]. */
export function window1d(size: number, k: number, s: number, padding: 'same' | 'valid'): [number, number] {
  if (padding === 'valid') return [0, Math.floor((size - k) / s) + 1];
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return [Math.floor(total / 2), out];
}

export interface ConvGeom {
  h: number;
  w: number;
  cin: number;
  kh: number;
  kw: number;
  /** output channels (Conv2D) or channel multiplier (DepthwiseConv2D) */
  cout: number;
  sh?: number;
  sw?: number;
  padding: 'same' | 'valid';
  depthwise?: boolean;
  /** distance between the kernel's taps (default 1): the window spans (k - 1) d + 1 inputs */
  dh?: number;
  dw?: number;
}

export interface ConvLin extends Lin {
  ho: number;
  wo: number;
  /** channels of the output */
  co: number;
}

/** Conv2D / DepthwiseConv2D with TF's zero padding, by direct loops. */
export function convLin(g: ConvGeom): ConvLin {
  const { h, w, cin, kh, kw, cout, padding } = g;
  const sh = g.sh ?? 1;
  const sw = g.sw ?? 1;
  const dh = g.dh ?? 1;
  const dwx = g.dw ?? 1;
  const [pt, ho] = window1d(h, (kh - 1) * dh + 1, sh, padding);
  const [pl, wo] = window1d(w, (kw - 1) * dwx + 1, sw, padding);
  const dw = g.depthwise === true;
  const co = dw ? cin * cout : cout;
  // visits every (input index, output index, kernel index) triple of the convolution
  const each = (fn: (xi: number, yi: number, wi: number) => void) => {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh + ky * dh - pt;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw + kx * dwx - pl;
            if (ix < 0 || ix >= w) continue;
            for (let ci = 0; ci < cin; ci++) {
              const xi = (iy * w + ix) * cin + ci;
              for (let m = 0; m < cout; m++) {
                const oc = dw ? ci * cout + m : m;
                fn(xi, (oy * wo + ox) * co + oc, ((ky * kw + kx) * cin + ci) * cout + m);
              }
            }
          }
        }
      }
    }
  };
  return {
    nIn: h * w * cin,
    nOut: ho * wo * co,
    ho,
    wo,
    co,
    forward(x, wt, b) {
      const y = new Float64Array(ho * wo * co);
      each((xi, yi, wi) => {
        y[yi]! += x[xi]! * wt[wi]!;
      });
      if (b !== null) for (let i = 0; i < y.length; i++) y[i]! += b[i % co]!;
      return y;
    },
    back(wt, gr) {
      const x = new Float64Array(h * w * cin);
      each((xi, yi, wi) => {
        x[xi]! += gr[yi]! * wt[wi]!;
      });
      return x;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Rules of linear layers (README "Rule definitions")

export function epsilonRef(L: Lin, x: F, w: F, b: F | null, r: F, eps: number): F {
  const z = L.forward(x, w, b);
  return mul(x, L.back(w, divStab(r, z, eps)));
}

export function zPlusRef(L: Lin, x: F, w: F, b: F | null, r: F, eps = 1e-6): F {
  const [xp, xn, wp, wn] = [pos(x), neg(x), pos(w), neg(w)];
  const z = add(L.forward(xp, wp, b === null ? null : pos(b)), L.forward(xn, wn, null));
  const s = divStab(r, z, eps);
  return add(mul(xp, L.back(wp, s)), mul(xn, L.back(wn, s)));
}

export function alphaBetaRef(
  L: Lin,
  x: F,
  w: F,
  b: F | null,
  r: F,
  alpha: number,
  beta: number,
  eps = 1e-6,
): F {
  const [xp, xn, wp, wn] = [pos(x), neg(x), pos(w), neg(w)];
  const zp = add(L.forward(xp, wp, b === null ? null : pos(b)), L.forward(xn, wn, null));
  const zn = add(L.forward(xp, wn, b === null ? null : neg(b)), L.forward(xn, wp, null));
  const sp = divStab(r, zp, eps);
  const sn = divStab(r, zn, eps);
  const positive = add(mul(xp, L.back(wp, sp)), mul(xn, L.back(wn, sp)));
  const negative = add(mul(xp, L.back(wn, sn)), mul(xn, L.back(wp, sn)));
  return sub(scale(positive, alpha), scale(negative, beta));
}

export function gammaRef(L: Lin, x: F, w: F, b: F | null, r: F, gamma: number, eps = 1e-6): F {
  const [xp, xn] = [pos(x), neg(x)];
  const wp = add(w, scale(pos(w), gamma));
  const wn = add(w, scale(neg(w), gamma));
  const bp = b === null ? null : add(b, scale(pos(b), gamma));
  const bn = b === null ? null : add(b, scale(neg(b), gamma));
  const z = L.forward(x, w, b);
  const rp = mapA(r, (v, j) => (z[j]! > 0 ? v : 0));
  const rn = mapA(r, (v, j) => (z[j]! < 0 ? v : 0));
  const gp = divStab(rp, add(L.forward(xp, wp, bp), L.forward(xn, wn, null)), eps);
  const gn = divStab(rn, add(L.forward(xp, wn, bn), L.forward(xn, wp, null)), eps);
  return add(
    add(mul(xp, L.back(wp, gp)), mul(xn, L.back(wn, gp))),
    add(mul(xp, L.back(wn, gn)), mul(xn, L.back(wp, gn))),
  );
}

/** Flat: o = f(1; 1, 0); R_in = back(1, R / stab(o)). `nW` is the kernel's size. */
export function flatRef(L: Lin, nW: number, r: F, eps = 1e-6): F {
  const one = ones(nW);
  const o = L.forward(ones(L.nIn), one, null);
  return L.back(one, divStab(r, o, eps));
}

/** WSquare: o = f(1; W^2, b^2) (squared bias in the denominator); R_in = back(W^2, R / stab(o)). */
export function wSquareRef(L: Lin, w: F, b: F | null, r: F, eps = 1e-6): F {
  const w2 = square(w);
  const o = L.forward(ones(L.nIn), w2, b === null ? null : square(b));
  return L.back(w2, divStab(r, o, eps));
}

export function zBoxRef(L: Lin, x: F, w: F, b: F | null, r: F, low: F, high: F, eps = 1e-6): F {
  const [wp, wn] = [pos(w), neg(w)];
  const z = sub(
    sub(L.forward(x, w, b), L.forward(low, wp, b === null ? null : pos(b))),
    L.forward(high, wn, b === null ? null : neg(b)),
  );
  const s = divStab(r, z, eps);
  return sub(sub(mul(x, L.back(w, s)), mul(low, L.back(wp, s))), mul(high, L.back(wn, s)));
}

// ---------------------------------------------------------------------------------------------------------
// Pooling

export interface PoolGeom {
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  padding: 'same' | 'valid';
}

/** Visits every window: its output index and the in-bounds input indices in row-major window order. */
function eachWindow(g: PoolGeom, fn: (yi: number, xs: number[]) => void): [number, number] {
  const [pt, ho] = window1d(g.h, g.kh, g.sh, g.padding);
  const [pl, wo] = window1d(g.w, g.kw, g.sw, g.padding);
  for (let oy = 0; oy < ho; oy++) {
    for (let ox = 0; ox < wo; ox++) {
      for (let c = 0; c < g.c; c++) {
        const xs: number[] = [];
        for (let ky = 0; ky < g.kh; ky++) {
          for (let kx = 0; kx < g.kw; kx++) {
            const iy = oy * g.sh + ky - pt;
            const ix = ox * g.sw + kx - pl;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) xs.push((iy * g.w + ix) * g.c + c);
          }
        }
        fn((oy * wo + ox) * g.c + c, xs);
      }
    }
  }
  return [ho, wo];
}

export function poolOutSize(g: PoolGeom): number {
  return window1d(g.h, g.kh, g.sh, g.padding)[1] * window1d(g.w, g.kw, g.sw, g.padding)[1] * g.c;
}

export function maxPoolRef(x: F, g: PoolGeom): F {
  const y = new Float64Array(poolOutSize(g));
  eachWindow(g, (yi, xs) => {
    y[yi] = Math.max(...xs.map((i) => x[i]!));
  });
  return y;
}

/** Plain gradient of max pooling: each window's R to its first maximum (row-major window order). */
export function maxPoolGradRef(x: F, g: PoolGeom, r: F): F {
  const out = new Float64Array(x.length);
  eachWindow(g, (yi, xs) => {
    let best = Number.NEGATIVE_INFINITY;
    let at = -1;
    for (const i of xs) {
      if (x[i]! > best) {
        best = x[i]!;
        at = i;
      }
    }
    out[at]! += r[yi]!;
  });
  return out;
}

/** TF average pooling: the mean over the in-bounds elements of each window. */
export function avgPoolRef(x: F, g: PoolGeom): F {
  const y = new Float64Array(poolOutSize(g));
  eachWindow(g, (yi, xs) => {
    y[yi] = xs.reduce((s, i) => s + x[i]!, 0) / xs.length;
  });
  return y;
}

/** Norm at average pooling: R_in = x * back_avg(R / stab(o)), each input getting 1/count of its windows. */
export function avgPoolNormRef(x: F, g: PoolGeom, r: F, eps = 1e-6): F {
  const o = avgPoolRef(x, g);
  const grad = new Float64Array(x.length);
  eachWindow(g, (yi, xs) => {
    const s = r[yi]! / stab(o[yi]!, eps);
    for (const i of xs) grad[i]! += s / xs.length;
  });
  return mul(x, grad);
}

export function gapRef(x: F, hw: number, c: number): F {
  const y = new Float64Array(c);
  for (let i = 0; i < hw; i++) for (let k = 0; k < c; k++) y[k]! += x[i * c + k]! / hw;
  return y;
}

/** Norm at global average pooling. */
export function gapNormRef(x: F, hw: number, c: number, r: F, eps = 1e-6): F {
  const o = gapRef(x, hw, c);
  return mapA(x, (v, i) => (v * r[i % c]!) / stab(o[i % c]!, eps) / hw);
}

/** Norm at Add: R_i = x_i * R / stab(sum_k x_k). */
export function addNormRef(xs: F[], r: F, eps = 1e-6): F[] {
  const total = xs.reduce((a, b) => add(a, b));
  const s = divStab(r, total, eps);
  return xs.map((x) => mul(x, s));
}

/**
 * PyTorch's `Conv2d(groups)` in NHWC by loops: the kernel is [kh, kw, cin / groups, cout]; output channel o of
 * group k = floor(o / (cout / groups)) reads only the input channels of group k. `g.cin` and `g.cout` are the
 * layer's full channel counts.
 */
export function groupedConvLin(g: ConvGeom, groups: number): ConvLin {
  const { h, w, cin, kh, kw, cout, padding } = g;
  const sh = g.sh ?? 1;
  const sw = g.sw ?? 1;
  const dh = g.dh ?? 1;
  const dwx = g.dw ?? 1;
  const [pt, ho] = window1d(h, (kh - 1) * dh + 1, sh, padding);
  const [pl, wo] = window1d(w, (kw - 1) * dwx + 1, sw, padding);
  const ipg = cin / groups;
  const opg = cout / groups;
  const each = (fn: (xi: number, yi: number, wi: number) => void) => {
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh + ky * dh - pt;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw + kx * dwx - pl;
            if (ix < 0 || ix >= w) continue;
            for (let o = 0; o < cout; o++) {
              const k = Math.floor(o / opg);
              for (let i = 0; i < ipg; i++) {
                const ci = k * ipg + i;
                fn(
                  (iy * w + ix) * cin + ci,
                  (oy * wo + ox) * cout + o,
                  ((ky * kw + kx) * ipg + i) * cout + o,
                );
              }
            }
          }
        }
  };
  return {
    nIn: h * w * cin,
    nOut: ho * wo * cout,
    ho,
    wo,
    co: cout,
    forward(x, wt, b) {
      const y = new Float64Array(ho * wo * cout);
      each((xi, yi, wi) => {
        y[yi]! += x[xi]! * wt[wi]!;
      });
      if (b !== null) for (let i = 0; i < y.length; i++) y[i]! += b[i % cout]!;
      return y;
    },
    back(wt, gr) {
      const x = new Float64Array(h * w * cin);
      each((xi, yi, wi) => {
        x[xi]! += gr[yi]! * wt[wi]!;
      });
      return x;
    },
  };
}
