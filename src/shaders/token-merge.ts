// Token merging inside a vision encoder (src/kernels/token-merge.ts): ToMe's bipartite soft
// matching (Bolya et al., "Token Merging: Your ViT But Faster") and PiToMe's energy-protected
// merging (Tran et al., "Accelerating Transformers with Spectrum-Preserving Token Merging",
// algo/pitome/merge.py). Similarity is the cosine of metric rows (the head-mean of a block's keys).
//
// Planning N tokens into N − r (mergePlan) takes these kernels, recorded in one pass:
//   norms   one thread per token: the inverse norm of its metric row.
//   score   one workgroup per token: cosines against its candidates, reduced either to the best
//           candidate (argmax, ties to the lowest token index) or to PiToMe's energy.
//   rank    one workgroup: candidates ordered by score, descending, ties to the lower index.
//   assign  one workgroup: the chosen tokens merge into their partners; survivors are numbered
//           by a prefix sum, so they keep their original order.
// ToMe: norms → score (A tokens' best B) → rank (A by best similarity, top r) → assign.
// PiToMe: norms → score (energies) → rank (top 2r) → score (even ranks' best odd rank) → assign.
//
// Departures from the papers' code, all in where tokens end up, none in which tokens merge:
// - The papers' code outputs [unmerged A tokens (class token first), every B token] (ToMe) or
//   [class token, protected tokens, B tokens], both in energy order (PiToMe). Here survivors keep
//   their original relative order, so position-dependent readers (the class token at 0, a later
//   pruning step that reads a patch grid) keep working. Attention itself is order-blind.
// - ToMe's code splits A/B over all tokens and bars the class token from merging by its score
//   (-inf); here the `protect` leading tokens are left out and A/B alternate over the rest, so
//   with protect = 1 the parities are swapped relative to the code. r is capped at |A| (the
//   code caps at ⌊(N − protect)/2⌋ = |B|; one more lets the odd A token out merge too).
// - Ties (identical tokens, e.g. flat background) are broken towards lower indices; torch's
//   argmax/argsort leave them to the implementation. PiToMe's argmax over B breaks them by token
//   index, not by B's energy order.
import { ROW_WORKGROUP, argmaxReduceHelpers, enableSubgroups, initLanes, laneBuiltins, reduceCommon, workgroupReduce } from './workgroup-reduce';

/** The most tokens a plan covers: the rank and assign kernels hold one u32 per token in workgroup memory (CLIP-L has 577). */
export const MERGE_MAX_TOKENS = 1024;

const WG = ROW_WORKGROUP;
/** Threads per workgroup of the elementwise merge kernels. */
export const MERGE_WORKGROUP = 64;

/**
 * inv_norm[i] = 1 / max(|metric row i|, 1e-12), one thread per token: F.normalize's scale (a zero
 * row is similar to nothing), computed once rather than for every pair in the score kernel.
 */
export const tokenNormsWgsl = () => /* wgsl */ `
struct Params { n: u32, dim: u32 }
@group(0) @binding(0) var<storage, read> metric: array<f32>;
@group(0) @binding(1) var<storage, read_write> inv_norm: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(${MERGE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= params.n) { return; }
  var squares = 0.0;
  for (var d = 0u; d < params.dim; d++) {
    let v = metric[i * params.dim + d];
    squares += v * v;
  }
  inv_norm[i] = 1.0 / max(sqrt(squares), 1e-12);
}
`;

export type ScoreKind = 'tome-partner' | 'energy' | 'pitome-partner';

/**
 * One workgroup per token w, each thread a strided share of the token's candidates c:
 * - tome-partner: token protect + 2w (set A) against protect + 2c + 1 (set B): partner = best, score = its cosine.
 * - energy: token protect + w against every non-protected token (itself too): score = mean ELU(cos − margin).
 * - pitome-partner: token order[2w] (even energy rank) against order[2c + 1] (odd ranks < 2r): partner = best.
 * score and partner are indexed by token.
 */
export function tokenScoreWgsl(kind: ScoreKind, subgroups: boolean): string {
  const [me, candidate] = {
    'tome-partner': ['params.protect + 2u * w', 'params.protect + 2u * c + 1u'],
    energy: ['params.protect + w', 'params.protect + c'],
    'pitome-partner': ['order[2u * w]', 'order[2u * c + 1u]'],
  }[kind];
  // Bindings in launcher order; each variant declares only what it uses (layout 'auto' drops the rest).
  const bindings = {
    'tome-partner': ['score: array<f32>', 'partner: array<u32>'],
    energy: ['score: array<f32>'],
    'pitome-partner': ['order: array<u32>', 'partner: array<u32>'],
  }[kind];
  const declarations = bindings.map((b, i) => `@group(0) @binding(${i + 2}) var<storage, ${b.startsWith('order') ? 'read' : 'read_write'}> ${b};`).join('\n');
  const body = kind === 'energy'
    ? /* wgsl */ `
  var sum = 0.0;
  for (var c = lid; c < params.candidates; c += WG) {
    let s = cosine(me, ${candidate}) - params.margin;
    sum += select(exp(s) - 1.0, s, s > 0.0); // ELU, alpha = 1
  }
  let total = energy_sum(Energy(sum)).sum;
  if (lid == 0u) { score[me] = total / f32(params.candidates); }`
    : /* wgsl */ `
  var best = vec2<u32>(0u, 0xffffffffu);
  for (var c = lid; c < params.candidates; c += WG) {
    let t = ${candidate};
    best = argmax_combine(best, vec2<u32>(order_key(cosine(me, t)), t));
  }
  let found = best_of(Best(best)).best;
  if (lid == 0u) {
    partner[me] = found.y;${kind === 'tome-partner' ? '\n    score[me] = key_value(found.x);' : ''}
  }`;
  return /* wgsl */ `
${enableSubgroups(subgroups)}
struct Params {
  dim: u32,        // floats per metric row
  protect: u32,    // leading tokens that never merge
  candidates: u32, // candidates per token
  margin: f32,     // PiToMe's energy margin
}
@group(0) @binding(0) var<storage, read> metric: array<f32>;
@group(0) @binding(1) var<storage, read> inv_norm: array<f32>;
${declarations}
@group(0) @binding(${bindings.length + 2}) var<uniform> params: Params;
${reduceCommon()}
${kind === 'energy'
    ? workgroupReduce('energy_sum', 'Energy', [{ name: 'sum', type: 'f32', op: 'sum' }], subgroups)
    : `${argmaxReduceHelpers(subgroups)}\n${workgroupReduce('best_of', 'Best', [{ name: 'best', type: 'argmax' }], subgroups)}`}
const WG = ${WG}u;

fn cosine(a: u32, b: u32) -> f32 {
  var ab = 0.0;
  for (var i = 0u; i < params.dim; i++) { ab += metric[a * params.dim + i] * metric[b * params.dim + i]; }
  return ab * inv_norm[a] * inv_norm[b];
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>${laneBuiltins(subgroups)}) {
  ${initLanes(subgroups)}
  let w = wid.x;
  let me = ${me};
${body}
}
`;
}

/**
 * One workgroup: candidates c < count (token first + c·step) ordered by score, descending, ties
 * to the lower index; order[rank] = token for rank < take. Rank by counting: every candidate
 * counts those ahead of it, count² / 256 comparisons a thread (4096 at 1024 tokens) in workgroup
 * memory, less code than a bitonic sort and a small cost next to the score kernel.
 */
export const tokenRankWgsl = () => /* wgsl */ `
struct Params {
  first: u32, // candidate c is token first + c * step
  step: u32,
  count: u32, // candidates, at most ${MERGE_MAX_TOKENS}
  take: u32,  // ranks to write out
}
@group(0) @binding(0) var<storage, read> score: array<f32>;
@group(0) @binding(1) var<storage, read_write> order: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
${reduceCommon()}
const WG = ${WG}u;
var<workgroup> keys: array<u32, ${MERGE_MAX_TOKENS}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let count = params.count;
  // Order keys compare as the floats do; the index breaks ties, so ranks are a permutation even with NaN.
  for (var c = lid; c < count; c += WG) { keys[c] = order_key(score[params.first + c * params.step]); }
  workgroupBarrier();
  for (var c = lid; c < count; c += WG) {
    let key = keys[c];
    var rank = 0u;
    for (var o = 0u; o < count; o++) {
      let other = keys[o];
      rank += select(0u, 1u, other > key || (other == key && o < c));
    }
    if (rank < params.take) { order[rank] = params.first + c * params.step; }
  }
}
`;

/**
 * One workgroup: token order[w·stride] merges into partner[that token] for w < merges (ToMe:
 * stride 1, the r best A tokens; PiToMe: stride 2, the even ranks), every other token survives.
 * plan[i] = survivor i's place among the survivors, or its partner's for a merged token.
 */
export const tokenAssignWgsl = () => /* wgsl */ `
struct Params {
  n: u32,      // tokens, at most ${MERGE_MAX_TOKENS}
  merges: u32, // r
  stride: u32,
}
@group(0) @binding(0) var<storage, read> order: array<u32>;
@group(0) @binding(1) var<storage, read> partner: array<u32>;
@group(0) @binding(2) var<storage, read_write> plan: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
const WG = ${WG}u;
const NONE = 0xffffffffu;
var<workgroup> into: array<u32, ${MERGE_MAX_TOKENS}>; // the token each merges into, NONE for survivors
var<workgroup> dest: array<u32, ${MERGE_MAX_TOKENS}>; // survivors' output indices
var<workgroup> per_thread: array<u32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = params.n;
  for (var i = lid; i < n; i += WG) { into[i] = NONE; }
  workgroupBarrier();
  for (var w = lid; w < params.merges; w += WG) {
    let t = order[w * params.stride];
    into[t] = partner[t];
  }
  workgroupBarrier();
  // Survivors numbered in order: each thread counts its contiguous run, then the runs before it.
  let chunk = (n + WG - 1u) / WG;
  let begin = min(n, lid * chunk);
  let end = min(n, begin + chunk);
  var mine = 0u;
  for (var i = begin; i < end; i++) { mine += select(0u, 1u, into[i] == NONE); }
  per_thread[lid] = mine;
  workgroupBarrier();
  var next = 0u;
  for (var j = 0u; j < lid; j++) { next += per_thread[j]; }
  for (var i = begin; i < end; i++) {
    if (into[i] == NONE) {
      dest[i] = next;
      next++;
    }
  }
  workgroupBarrier();
  // Partners are B tokens, which never merge, so their numbers are final.
  for (var i = begin; i < end; i++) { plan[i] = dest[select(i, into[i], into[i] != NONE)]; }
}
`;

/**
 * The plan inverted, as lists (CSR): sources = tokens sorted by (plan, index), offsets[j] = where
 * output j's start, offsets[merged] = the end. Thread t places token t and writes offsets[t], each
 * by counting over the whole plan (N reads, all threads reading the same small buffer): no
 * single-workgroup limit on N and correct for any plan, not only one from mergePlan. Tokens with
 * plan ≥ merged land past offsets[merged] and are ignored.
 */
export const mergeSourcesWgsl = () => /* wgsl */ `
struct Params { n: u32, merged: u32 }
@group(0) @binding(0) var<storage, read> plan: array<u32>;
@group(0) @binding(1) var<storage, read_write> sources: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(${MERGE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let n = params.n;
  if (t < n) {
    let d = plan[t];
    var at = 0u;
    for (var i = 0u; i < n; i++) {
      let p = plan[i];
      at += select(0u, 1u, p < d || (p == d && i < t));
    }
    sources[at] = t;
  }
  if (t <= params.merged) {
    var start = 0u;
    for (var i = 0u; i < n; i++) { start += select(0u, 1u, plan[i] < t); }
    offsets[t] = start;
  }
}
`;

/**
 * out[j][c] = Σ sizes[i]·x[i][c] / Σ sizes[i] over output j's sources (ToMe's merge_wavg), one
 * thread per output element; the c = 0 thread writes the size (and with logSizes its log, for
 * proportional attention). An output without sources is 0/0 = NaN: only a plan that is not onto
 * makes one.
 */
export const mergeTokensWgsl = (logSizes: boolean) => /* wgsl */ `
struct Params { width: u32, merged: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> sizes: array<f32>;
@group(0) @binding(2) var<storage, read> sources: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_sizes: array<f32>;
${logSizes ? '@group(0) @binding(6) var<storage, read_write> out_log_sizes: array<f32>;' : ''}
@group(0) @binding(${logSizes ? 7 : 6}) var<uniform> params: Params;

@compute @workgroup_size(${MERGE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let j = gid.y;
  if (c >= params.width || j >= params.merged) { return; }
  var total = 0.0;
  var acc = 0.0;
  for (var s = offsets[j]; s < offsets[j + 1u]; s++) {
    let i = sources[s];
    let size = sizes[i];
    total += size;
    acc += size * x[i * params.width + c];
  }
  out[j * params.width + c] = acc / total;
  if (c == 0u) {
    out_sizes[j] = total;${logSizes ? '\n    out_log_sizes[j] = log(total);' : ''}
  }
}
`;
