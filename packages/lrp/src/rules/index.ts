import { add2, cpMatmul, layerNormEpsilon, linearEpsilon, softmaxDT, uniformMatmul } from './attn-lrp.js';
import { alphaBeta, epsilon, flat, gamma, wSquare, zBox, zPlus } from './lrp-rules.js';
import { gradient, norm, pass, passToFeature } from './structural.js';

/** All built-in rules in one namespace: `rules.epsilon(0.25)`, `rules.zPlus()`, ... */
export const rules = {
  epsilon,
  zPlus,
  alphaBeta,
  gamma,
  flat,
  wSquare,
  zBox,
  norm,
  pass,
  passToFeature,
  gradient,
  // AttnLRP (LXT's explicit rules)
  linearEpsilon,
  layerNormEpsilon,
  softmaxDT,
  uniformMatmul,
  cpMatmul,
  add2,
};
