// Token sampling on the GPU, one workgroup per row of logits; only the chosen ids (u32) need to
// come back to the CPU.
//
// Order (llama.cpp's default chain): repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> draw. Each filter keeps the tokens whose logit is >= a threshold, so the kept set
// is {i : logit_i >= T} with T the largest of the three thresholds, found without sorting:
//   top-k: T_k = the k-th largest logit. A search over the 32-bit order keys of the logits: each
//     round counts the logits >= a pivot in one pass over the row (strided, coalesced) and a
//     workgroup reduction, and also finds the nearest logits on either side of the pivot, so
//     the search interval always ends on actual logits and stops when it holds a single value
//     (at most 32 rounds: each one at least halves the interval of keys).
//   top-p: T_p = the largest logit t >= T_k with sum_{x >= t} e^(x - max) >= p * Z_k, where Z_k
//     sums the top-k set (llama.cpp renormalizes after top-k). The same search, summing masses.
//   min-p: T_m = max + ln(min_p) (ln computed on the CPU), i.e. p_i >= min_p * p_max.
// Ties at a threshold are all kept (llama.cpp keeps an arbitrary subset of tied logits).
// Temperature applies last: weights e^((x - max) / temp) over the kept set.
// The draw is an inverse CDF in vocabulary order: each thread sums the weights of one contiguous
// chunk, thread 0 walks the 256 chunk sums to the chunk holding u * total, then that chunk.
// u comes from a counter-based hash of (seed, step, row), so results reproduce exactly and the
// CPU reference (src/reference/sampling.ts) draws with the same u.
// Temperature 0 is greedy: the argmax, ties to the lowest id (sample() runs the smaller argmax
// kernel instead unless probs or thresholds are asked for).
// Cost: ~2 + rounds(top-k) + 1 + rounds(top-p) passes over the row, each a few barriers; the
// passes are coalesced and the row (600 KB at 151936) stays in L2.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { ROW_WORKGROUP, argmaxReduceHelpers, enableSubgroups, initLanes, laneBuiltins, reduceCommon, workgroupReduce } from './workgroup-reduce';

/** Params.flags bits. */
export const SAMPLER_GREEDY = 1;
export const SAMPLER_MIN_P = 2;

export interface SamplerVariant {
  subgroups: boolean;
  /** Also write the final distribution (zeros outside the kept set) to a [rows][vocab] buffer. */
  writeProbs: boolean;
  /** Also write each row's threshold T (f32; the kept set is logits >= T) to a [rows] buffer. */
  writeThreshold: boolean;
}

/** pcg3d (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020). Mirrored in src/reference/sampling.ts. */
export const pcg3dWgsl = /* wgsl */ `
fn pcg3d(input: vec3<u32>) -> vec3<u32> {
  var v = input * 1664525u + 1013904223u;
  v.x += v.y * v.z; v.y += v.z * v.x; v.z += v.x * v.y;
  v ^= v >> vec3<u32>(16u);
  v.x += v.y * v.z; v.y += v.z * v.x; v.z += v.x * v.y;
  return v;
}
`;

export const samplerWgsl = ({ subgroups, writeProbs, writeThreshold }: SamplerVariant) => {
  const bindings = [
    'var<storage, read> logits: array<f32>;',
    'var<storage, read_write> tokens: array<u32>;',
    ...(writeProbs ? ['var<storage, read_write> probs: array<f32>;'] : []),
    ...(writeThreshold ? ['var<storage, read_write> thresholds: array<f32>;'] : []),
    'var<uniform> params: Params;',
  ];
  return wgsl`
${enableSubgroups(subgroups)}
struct Params {
  rows: u32, vocab: u32, top_k: u32, flags: u32,
  top_p: f32, log_min_p: f32, inv_temperature: f32,
  minus_infinity: f32, // -inf from the CPU: WGSL constant expressions may not produce infinities
  seed: u32, step: u32, _pad1: u32, _pad2: u32,
}
${bindings.map((line, i) => `@group(0) @binding(${i}) ${line}`).join('\n')}
${reduceCommon()}
${argmaxReduceHelpers(subgroups)}
${workgroupReduce('row_stats', 'RowStats', [{ name: 'best', type: 'argmax' }, { name: 'lowest', type: 'u32', op: 'min' }], subgroups)}
${workgroupReduce('search_round', 'SearchRound', [
    { name: 'amount', type: 'f32', op: 'sum' }, // count or mass of logits >= pivot
    { name: 'above', type: 'u32', op: 'min' }, // smallest key >= pivot
    { name: 'below', type: 'u32', op: 'max' }, // largest key < pivot
  ], subgroups)}
${pcg3dWgsl}

const WG: u32 = ${ROW_WORKGROUP}u;
var<private> row_base: u32;
var<workgroup> chunk_sums: array<f32, ${ROW_WORKGROUP}>;
var<workgroup> draw_total: f32;

// NaN logits count as -inf (never kept, never counted).
fn logit(i: u32) -> f32 {
  let v = logits[row_base + i];
  return select(v, params.minus_infinity, is_nan(v));
}

// Round of the threshold search: how many logits (or how much e^(x - max) mass) lie at or above
// the pivot key, and the nearest keys on both sides of it.
fn search_round_at(pivot: u32, max_value: f32, by_mass: bool) -> SearchRound {
  var amount = 0.0;
  var above = 0xffffffffu;
  var below = 0u;
  for (var i = reduce_lid; i < params.vocab; i += WG) {
    let v = logit(i);
    let key = order_key(v);
    if (key >= pivot) {
      amount += select(1.0, exp(v - max_value), by_mass);
      above = min(above, key);
    } else {
      below = max(below, key);
    }
  }
  return search_round(SearchRound(amount, above, below));
}

// The largest logit key t in [lo, hi] with amount(>= t) >= goal, given amount(>= lo) >= goal.
// lo and hi are keys of actual logits and stay so; each round halves the interval or better.
// For a mass search the goal is a fraction of the mass at or above lo, measured by a first
// round with the pivot at lo (so the round is one copy of code: on CPU adapters a shader's
// cost follows the number of barriers in its code, executed or not).
fn threshold_search(lo_start: u32, hi_start: u32, count_or_fraction: f32, max_value: f32, by_mass: bool) -> u32 {
  var lo = lo_start;
  var hi = hi_start;
  var goal = count_or_fraction;
  var measured = !by_mass;
  for (var round = 0u; round < 64u && (lo < hi || !measured); round++) {
    let pivot = select(lo, lo + (hi - lo + 1u) / 2u, measured); // in (lo, hi] once measured
    let r = search_round_at(pivot, max_value, by_mass);
    if (!measured) {
      goal = count_or_fraction * r.amount;
      measured = true;
    } else if (r.amount >= goal) {
      lo = r.above; // the answer is >= the smallest logit at or above the pivot
    } else {
      hi = r.below; // the answer is < pivot, so <= the largest logit below it
    }
  }
  return lo;
}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  row_base = row * params.vocab;
  let vocab = params.vocab;

  // Pass 1: argmax (greedy, and the max every filter refers to) and the smallest logit.
  var best = vec2<u32>(0u, 0xffffffffu);
  var lowest = 0xffffffffu;
  for (var i = lid; i < vocab; i += WG) {
    let key = order_key(logit(i));
    if (key > best.x || best.y == 0xffffffffu) { best = vec2<u32>(key, i); }
    lowest = min(lowest, key);
  }
  let stats = row_stats(RowStats(best, lowest));
  let max_key = stats.best.x;
  let max_value = key_value(max_key);

  // Greedy, or nothing to weigh (every logit -inf or NaN): the argmax (0 for an empty row).
  if ((params.flags & ${SAMPLER_GREEDY}u) != 0u || max_key <= 0x007fffffu) {
    if (lid == 0u) {
      tokens[row] = select(stats.best.y, 0u, stats.best.y == 0xffffffffu);
#if ${writeThreshold}
      thresholds[row] = max_value;
#endif
    }
#if ${writeProbs}
    for (var i = lid; i < vocab; i += WG) { probs[row_base + i] = select(0.0, 1.0, i == stats.best.y); }
#endif
    return;
  }

  // top-k (phase 0, counting), then top-p over the top-k set (phase 1, by mass), then min-p.
  // One loop so the search code exists once.
  let top_k_on = params.top_k > 0u && params.top_k < vocab;
  let top_p_on = params.top_p < 1.0;
  var key_k = stats.lowest;
  var key_p = stats.lowest;
  for (var phase = 0u; phase < 2u; phase++) {
    let by_mass = phase == 1u;
    if ((by_mass && top_p_on) || (!by_mass && top_k_on)) {
      let found_key = threshold_search(select(stats.lowest, key_k, by_mass), max_key, select(f32(params.top_k), params.top_p, by_mass), max_value, by_mass);
      if (by_mass) { key_p = found_key; } else { key_k = found_key; }
    }
  }
  var key_min_p = 0u;
  if ((params.flags & ${SAMPLER_MIN_P}u) != 0u) {
    key_min_p = order_key(max_value + params.log_min_p);
  }
  let key_threshold = max(max(key_k, key_p), key_min_p);

  // Draw: contiguous chunks so that chunk order is vocabulary order.
  let chunk = (vocab + WG - 1u) / WG;
  let chunk_start = min(lid * chunk, vocab);
  let chunk_end = min(chunk_start + chunk, vocab);
  var chunk_sum = 0.0;
  for (var i = chunk_start; i < chunk_end; i++) {
    let v = logit(i);
    if (order_key(v) >= key_threshold) { chunk_sum += exp((v - max_value) * params.inv_temperature); }
  }
  chunk_sums[lid] = chunk_sum;
  workgroupBarrier();

  if (lid == 0u) {
    var total = 0.0;
    for (var c = 0u; c < WG; c++) { total += chunk_sums[c]; }
    draw_total = total;
    let u = f32(pcg3d(vec3<u32>(params.seed, params.step, row)).x >> 8u) * (1.0 / 16777216.0);
    let goal = u * total;
    // The chunk holding the goal; rounding can leave it just past the end: then the last
    // chunk with any weight, and in it the last kept token.
    var prefix = 0.0;
    var chosen_chunk = 0u;
    var found = false;
    for (var c = 0u; c < WG; c++) {
      let s = chunk_sums[c];
      if (s > 0.0) {
        chosen_chunk = c;
        if (prefix + s > goal) { found = true; break; }
        prefix += s;
      }
    }
    let start = chosen_chunk * chunk;
    let end = min(start + chunk, vocab);
    var token = start;
    var running = prefix;
    for (var i = start; i < end; i++) {
      let v = logit(i);
      let w = select(0.0, exp((v - max_value) * params.inv_temperature), order_key(v) >= key_threshold);
      if (w > 0.0) {
        token = i;
        running += w;
        if (found && running > goal) { break; }
      }
    }
    tokens[row] = token;
#if ${writeThreshold}
    thresholds[row] = key_value(key_threshold);
#endif
  }

#if ${writeProbs}
  let total = workgroupUniformLoad(&draw_total);
  for (var i = lid; i < vocab; i += WG) {
    let v = logit(i);
    probs[row_base + i] = select(0.0, exp((v - max_value) * params.inv_temperature) / total, order_key(v) >= key_threshold);
  }
#endif
}
`;
};

/**
 * Repetition penalty (llama.cpp / CTRL): for each distinct id in the list, a positive logit is
 * divided by the penalty and a non-positive one multiplied, in place. Ids past the vocabulary are
 * ignored. One workgroup per row, one thread per list entry; an entry defers to an earlier equal
 * one (O(count^2) comparisons, fine for llama.cpp's default last-64 window), so a repeated id is
 * penalized once, as llama.cpp's token-count map does.
 */
export const repetitionPenaltyWgsl = () => /* wgsl */ `
struct Params { rows: u32, vocab: u32, count: u32, _pad: u32, penalty: f32, inv_penalty: f32 }
@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> penalized_ids: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  if (row >= params.rows) { return; }
  for (var j = lid; j < params.count; j += ${ROW_WORKGROUP}u) {
    let id = penalized_ids[j];
    if (id >= params.vocab) { continue; }
    var first = true;
    for (var k = 0u; k < j; k++) {
      if (penalized_ids[k] == id) { first = false; break; }
    }
    if (!first) { continue; }
    let at = row * params.vocab + id;
    let v = logits[at];
    // Multiplying by 1/penalty (rounded on the CPU) rather than dividing: WGSL division is not
    // correctly rounded, and the CPU reference must agree to the bit.
    logits[at] = select(v * params.penalty, v * params.inv_penalty, v > 0.0);
  }
}
`;
