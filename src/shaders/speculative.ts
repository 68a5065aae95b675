// Lossless speculative sampling on the GPU (A1 step 3-6, A2 step 9, A4 step 3): one workgroup
// walks a verified draft tree from the root and decides, child by child, which drafts the target
// accepts, then draws the one token the target emits after the accepted path. Only that path and
// token come back to the CPU; the [nodes][vocab] distributions stay on the GPU.
//
// At node `cur` the target's distribution is p = probs[cur] (the sampler's processed, normalised
// distribution of that tree row). Its children are tried in index order (DFS preorder keeps the
// order they were drafted in); r starts as p:
//   point-mass drafts (prompt lookup, Token Recycling, layer skip): accept child x with
//     probability r(x) / sum(r); on rejection r(x) = 0 (the residual of a point mass).
//   drafts drawn from q = draft[cur] without replacement (a draft model, RSD): with q' the part
//     of q not yet drawn, accept x with probability min(1, (r(x)/sum r) / (q'(x)/sum q')); on
//     rejection r = max(0, r/sum r - q'/sum q') and q'(x) = 0.
// An accepted child becomes `cur`; when no child is accepted (or `cur` is a leaf) the token is
// drawn from r by inverse CDF in vocabulary order. The emitted sequence is then distributed
// exactly as plain sampling from the target (src/reference/speculative-sampling.ts proves each
// rule; the tests compare this kernel with acceptTreeRef and count its draws).
//
// Uniforms: pcg3d(seed, step, trial << 16 | k) for the k-th draw of a trial, so the same inputs
// give the same tokens. `trials` independent walks over the same tree (one workgroup each) exist
// for the statistical tests; the engine runs one.
//
// r and q' live in read_write scratch ([trials][vocab]); each thread owns the indices i = lid +
// j * 256 except in the draw, so storageBarrier() orders the cross-thread reads.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { pcg3dWgsl } from './sampling';

export const ACCEPT_WORKGROUP = 256;

export const speculativeAcceptWgsl = (withDraft: boolean) => wgsl`
struct Params { nodes: u32, vocab: u32, seed: u32, step: u32, draft_stride: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
@group(0) @binding(0) var<storage, read> probs: array<f32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> parents: array<i32>;
@group(0) @binding(3) var<storage, read_write> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<u32>;
#if ${withDraft}
@group(0) @binding(5) var<storage, read> draft: array<f32>;
@group(0) @binding(6) var<storage, read_write> left: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;
#else
@group(0) @binding(5) var<uniform> params: Params;
#endif
${pcg3dWgsl}

const WG: u32 = ${ACCEPT_WORKGROUP}u;
var<workgroup> partial_r: array<f32, WG>;
var<workgroup> partial_q: array<f32, WG>;
var<workgroup> picked: vec2<f32>;
var<workgroup> measured: vec4<f32>;
var<workgroup> drawn: u32;

fn uniform01(trial: u32, k: u32) -> f32 {
  return f32(pcg3d(vec3<u32>(params.seed, params.step, (trial << 16u) | k)).x >> 8u) * (1.0 / 16777216.0);
}

// (sum r, sum q', r(x), q'(x)) over the trial's scratch rows, the same in every thread.
fn measure(lid: u32, base: u32, x: u32) -> vec4<f32> {
  var sum_r = 0.0;
  var sum_q = 0.0;
  for (var i = lid; i < params.vocab; i += WG) {
    let r = residual[base + i];
    sum_r += r;
#if ${withDraft}
    let q = left[base + i];
    sum_q += q;
#else
    let q = 0.0;
#endif
    if (i == x) { picked = vec2<f32>(r, q); }
  }
  partial_r[lid] = sum_r;
  partial_q[lid] = sum_q;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      partial_r[lid] += partial_r[lid + stride];
      partial_q[lid] += partial_q[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) { measured = vec4<f32>(partial_r[0], partial_q[0], picked.x, picked.y); }
  return workgroupUniformLoad(&measured);
}

// A draw from r by inverse CDF in vocabulary order: contiguous chunks, then thread 0 walks them.
// An empty r (every weight 0, which exact arithmetic never gives) draws from p = probs[row].
fn draw(lid: u32, base: u32, row: u32, u: f32) -> u32 {
  let vocab = params.vocab;
  let chunk = (vocab + WG - 1u) / WG;
  let start = min(lid * chunk, vocab);
  let end = min(start + chunk, vocab);
  var sum = 0.0;
  for (var i = start; i < end; i++) { sum += residual[base + i]; }
  partial_r[lid] = sum;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var c = 0u; c < WG; c++) { total += partial_r[c]; }
    if (!(total > 0.0)) {
      for (var i = 0u; i < vocab; i++) { residual[base + i] = probs[row * vocab + i]; }
      total = 0.0;
      for (var c = 0u; c < WG; c++) {
        var s = 0.0;
        for (var i = min(c * chunk, vocab); i < min(c * chunk + chunk, vocab); i++) { s += residual[base + i]; }
        partial_r[c] = s;
        total += s;
      }
    }
    let goal = u * total;
    var prefix = 0.0;
    var chosen_chunk = 0u;
    var found = false;
    for (var c = 0u; c < WG; c++) {
      let s = partial_r[c];
      if (s > 0.0) {
        chosen_chunk = c;
        if (prefix + s > goal) { found = true; break; }
        prefix += s;
      }
    }
    // Rounding can leave the goal past the end: then the last token with any weight.
    let first = chosen_chunk * chunk;
    var token = first;
    var running = prefix;
    for (var i = first; i < min(first + chunk, vocab); i++) {
      let w = residual[base + i];
      if (w > 0.0) {
        token = i;
        running += w;
        if (found && running > goal) { break; }
      }
    }
    drawn = token;
  }
  return workgroupUniformLoad(&drawn);
}

// result[trial]: [path length L, emitted token, path node indices (root first, L of them), ...].
@compute @workgroup_size(${ACCEPT_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let trial = wid.x;
  let vocab = params.vocab;
  let base = trial * vocab;
  let out = trial * (params.nodes + 2u);
  var k = 0u;
  var cur = 0u;
  var length = 1u;
  var token = 0u;
  if (lid == 0u) { result[out + 2u] = 0u; }
  loop {
    for (var i = lid; i < vocab; i += WG) {
      residual[base + i] = probs[cur * vocab + i];
#if ${withDraft}
      left[base + i] = draft[cur * params.draft_stride + i];
#endif
    }
    var next = 0u; // the root is nobody's child, so 0 means none accepted
    for (var c = cur + 1u; c < params.nodes; c++) {
      if (parents[c] != i32(cur)) { continue; }
      let x = tokens[c];
      storageBarrier();
      let m = measure(lid, base, x);
      let u = uniform01(trial, k);
      k++;
#if ${withDraft}
      let px = m.z / m.x;
      let qx = m.w / m.y;
      let ratio = select(select(0.0, 1.0, px > 0.0), min(1.0, px / qx), qx > 0.0);
#else
      let ratio = m.z / m.x;
#endif
      if (u < ratio) {
        next = c;
        break;
      }
#if ${withDraft}
      for (var i = lid; i < vocab; i += WG) {
        residual[base + i] = max(0.0, residual[base + i] / m.x - left[base + i] / m.y);
        if (i == x) { left[base + i] = 0.0; }
      }
#else
      for (var i = lid; i < vocab; i += WG) {
        if (i == x) { residual[base + i] = 0.0; }
      }
#endif
    }
    if (next == 0u) {
      storageBarrier();
      token = draw(lid, base, cur, uniform01(trial, k));
      break;
    }
    if (lid == 0u) { result[out + 2u + length] = next; }
    length++;
    cur = next;
  }
  if (lid == 0u) {
    result[out] = length;
    result[out + 1u] = token;
  }
}
`;

// Greedy verification's decision on the GPU (A2 step 8, A1 step 4): one thread walks the verified
// tree from the root while a child (in index order) holds the target's argmax after the current
// node. result: [path length L, the target's argmax after the last kept node (the bonus token),
// the L path node indices, root first], the layout speculativeAccept writes.
export const greedyAcceptWgsl = /* wgsl */ `
struct Params { nodes: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
@group(0) @binding(0) var<storage, read> target_next: array<u32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> parents: array<i32>;
@group(0) @binding(3) var<storage, read_write> result: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(1)
fn main() {
  var cur = 0u;
  var length = 1u;
  result[2] = 0u;
  loop {
    let want = target_next[cur];
    // DFS preorder puts children after their parent: the next node is always a later index.
    var next = 0u;
    for (var c = cur + 1u; c < params.nodes; c++) {
      if (parents[c] == i32(cur) && tokens[c] == want) {
        next = c;
        break;
      }
    }
    if (next == 0u) { break; }
    result[2u + length] = next;
    length++;
    cur = next;
  }
  result[0] = length;
  result[1] = target_next[cur];
}
`;

// After either walk: the kept path's tokens go to result[token_offset + i] (read back with the
// path), and the K/V moves that commit it (node path[i]'s slot to slot i, after the cache; K2) go
// to moves[2i - 2], moves[2i - 1] for i in 1..=pairs. Past the path's end the pairs are identities,
// so kvMove can run a fixed count of pairs in the same submission, before the CPU knows the path.
export const acceptedPathWgsl = /* wgsl */ `
struct Params { first: u32, pairs: u32, token_offset: u32, _pad: u32 }
@group(0) @binding(0) var<storage, read_write> result: array<u32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> moves: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(1)
fn main() {
  let length = result[0];
  for (var i = 0u; i < length; i++) { result[params.token_offset + i] = tokens[result[2u + i]]; }
  for (var i = 1u; i <= params.pairs; i++) {
    let node = select(i, result[2u + i], i < length);
    moves[2u * i - 2u] = params.first + node;
    moves[2u * i - 1u] = params.first + i;
  }
}
`;
