// Attention over the paged KV cache (src/kernels/kv-cache.ts), one mask function shared by every
// path. Keys are visited through a "virtual" index so that masks which skip most of the cache
// (sink + window, block-sparse lists) never touch the skipped keys:
//   dense masks:       virtual v -> slot v
//   sink-window/lambda: v < sinks' -> v, else window_start + (v - sinks'), sinks' = min(sinks, window_start)
//   block-sparse:      v -> blocks[kv_head][v / block] * block + v % block
// Query i of a step sits at logical slot query_start + i; its own K/V are already in the cache.
import type { KvFormat } from '../kernels/kv-cache';
import { kvReadWgsl, physicalSlotWgsl } from './kv-cache';

export type MaskKind = 'causal' | 'none' | 'tree' | 'sink-window' | 'lambda' | 'block-sparse';

export interface AttentionVariant {
  format: KvFormat;
  group: number;
  headDim: number;
  mask: MaskKind;
  bias: boolean;
}

/** Uniform layout shared by the attention kernels (20 words). */
export const paramsWgsl = /* wgsl */ `
struct Params {
  tokens: u32, heads: u32, kv_heads: u32, kv_len: u32,
  query_start: u32, scale: f32, mask_a: u32, mask_b: u32,
  virtual_len: u32, window_start: u32, splits: u32, chunk: u32,
  mask_c: u32, range_start: u32, range_end: u32, accumulate: u32,
  mass_stride: u32, noise_seed: u32, noise_inv_tau: f32, _pad: u32,
}`;

/**
 * Keyformer's Gumbel noise (B3) for query slot qs, query head h and key slot j: a hash of
 * (seed, qs, h, j) to a uniform u in (0, 1), then −log(−log u). The same in every kernel that
 * scores with noise, so their softmaxes agree (src/reference/attention.ts has the CPU twin).
 */
export const gumbelWgsl = /* wgsl */ `
fn noise_hash(x: u32) -> u32 {
  var h = x * 0x9e3779b9u;
  h ^= h >> 16u; h *= 0x85ebca6bu; h ^= h >> 13u; h *= 0xc2b2ae35u; h ^= h >> 16u;
  return h;
}
fn gumbel(qs: u32, head: u32, slot: u32) -> f32 {
  let h = noise_hash(params.noise_seed ^ noise_hash(qs * 65599u + head) ^ noise_hash(slot + 0x632be5abu));
  let u = (f32(h >> 9u) + 0.5) / 8388608.0; // exact in f32
  return -log(-log(u));
}`;

/**
 * Bindings from `first`: page_table, kv (2 or 4), then the mask's buffers (tree_end; blocks and
 * counts) and key_bias when used. Returns the WGSL and the number of bindings used.
 */
export function attentionCommonWgsl(v: AttentionVariant, first: number): { code: string; bindings: number } {
  let b = first;
  const decl: string[] = [`@group(0) @binding(${b++}) var<storage, read> page_table: array<u32>;`];
  const kv = kvReadWgsl(v.format, v.group, v.headDim, b, 'params.kv_heads');
  b += v.format === 'int8' || v.format === 'int4' ? 4 : 2;
  if (v.mask === 'tree') decl.push(`@group(0) @binding(${b++}) var<storage, read> tree_end: array<u32>;`);
  if (v.mask === 'block-sparse') {
    decl.push(`@group(0) @binding(${b++}) var<storage, read> blocks: array<u32>;`);
    decl.push(`@group(0) @binding(${b++}) var<storage, read> block_counts: array<u32>;`);
  }
  if (v.bias) decl.push(`@group(0) @binding(${b++}) var<storage, read> key_bias: array<f32>;`);

  const visible = {
    none: 'return true;',
    causal: 'return slot <= qs;',
    tree: `if (slot < params.query_start) { return true; }
  let a = slot - params.query_start;
  return a <= t && t < tree_end[a];`,
    'sink-window': 'return slot <= qs && (slot < params.mask_a || qs - slot < params.mask_b);',
    lambda: 'return slot <= qs && (slot < params.mask_a || qs - slot < params.mask_b);',
    'block-sparse': 'return slot <= qs;',
  }[v.mask];
  const keySlot = {
    none: 'return v;',
    causal: 'return v;',
    tree: 'return v;',
    'sink-window': 'return select(params.window_start + (v - params.mask_c), v, v < params.mask_c);',
    lambda: 'return select(params.window_start + (v - params.mask_c), v, v < params.mask_c);',
    'block-sparse': `let block = blocks[kv_head * params.mask_c + v / params.mask_a];
  return block * params.mask_a + v % params.mask_a;`,
  }[v.mask];
  const virtualLen = v.mask === 'block-sparse' ? 'return min(block_counts[kv_head], params.mask_c) * params.mask_a;' : 'return params.virtual_len;';

  const code = `
${decl.join('\n')}
${kv}
${physicalSlotWgsl}
const HEAD_DIM: u32 = ${v.headDim}u;
const D4: u32 = ${v.headDim / 4}u;
const NEG_INF: f32 = -3.0e38;

/** Whether query t (at logical slot qs) may see the key at logical slot \`slot\`. */
fn visible(t: u32, qs: u32, slot: u32) -> bool {
  if (slot >= params.kv_len) { return false; }
  ${visible}
}

/** Logical slot of virtual key v for this kv head. */
fn key_slot(kv_head: u32, v: u32) -> u32 {
  ${keySlot}
}

/** How many virtual keys this kv head has. */
fn virtual_len(kv_head: u32) -> u32 {
  ${virtualLen}
}

fn bias_of(slot: u32) -> f32 {
  ${v.bias ? 'return key_bias[slot];' : 'return 0.0;'}
}
`;
  return { code, bindings: b - first };
}

/** Key tile size for the flash kernel: two tiles of TILE x headDim f32 stay within 16 KiB. */
export function flashTile(headDim: number): number {
  return headDim <= 64 ? 32 : 16;
}
export const FLASH_QUERIES = 32;

/**
 * Flash attention for many queries: a workgroup takes FLASH_QUERIES queries of one head, each
 * thread one query with its running (max, sum, output) in registers, and walks K/V in tiles
 * loaded into workgroup memory. The score matrix never exists.
 * Bindings: q, out, lse, params, then the common ones.
 */
export function flashWgsl(v: AttentionVariant): string {
  const tile = flashTile(v.headDim);
  const common = attentionCommonWgsl(v, 4);
  const skipAhead = v.mask === 'causal' || v.mask === 'tree';
  return /* wgsl */ `
${paramsWgsl}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${common.code}
var<workgroup> tile_k: array<vec4<f32>, ${tile * (v.headDim / 4)}>;
var<workgroup> tile_v: array<vec4<f32>, ${tile * (v.headDim / 4)}>;
var<workgroup> tile_slot: array<u32, ${tile}>;

@compute @workgroup_size(${FLASH_QUERIES})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wg.y;
  let kv_head = head / (params.heads / params.kv_heads);
  let first = wg.x * ${FLASH_QUERIES}u;
  let t = first + lid;
  let has_query = t < params.tokens;
  let qs = params.query_start + t;

  var qv: array<vec4<f32>, ${v.headDim / 4}>;
  var acc: array<vec4<f32>, ${v.headDim / 4}>;
  if (has_query) {
    for (var d = 0u; d < D4; d++) { qv[d] = q[(t * params.heads + head) * D4 + d] * params.scale; }
  }
  for (var d = 0u; d < D4; d++) { acc[d] = vec4<f32>(0.0); }
  var m = NEG_INF;
  var l = 0.0;

  var limit = virtual_len(kv_head);
  ${skipAhead ? '// Keys after the workgroup\'s last query are invisible to all of its queries.\n  limit = min(limit, params.query_start + min(params.tokens, first + ' + FLASH_QUERIES + 'u));' : ''}
  for (var base = 0u; base < limit; base += ${tile}u) {
    let n = min(${tile}u, limit - base);
    for (var i = lid; i < n * D4; i += ${FLASH_QUERIES}u) {
      let j = i / D4;
      let slot = key_slot(kv_head, base + j);
      let phys = physical_slot(slot);
      tile_k[i] = load_k(phys, kv_head, i % D4);
      tile_v[i] = load_v(phys, kv_head, i % D4);
      if (i % D4 == 0u) { tile_slot[j] = slot; }
    }
    workgroupBarrier();
    if (has_query) {
      for (var j = 0u; j < n; j++) {
        let slot = tile_slot[j];
        if (!visible(t, qs, slot)) { continue; }
        var s = bias_of(slot);
        for (var d = 0u; d < D4; d++) { s += dot(qv[d], tile_k[j * D4 + d]); }
        let m_new = max(m, s);
        let correction = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * correction + p;
        for (var d = 0u; d < D4; d++) { acc[d] = acc[d] * correction + p * tile_v[j * D4 + d]; }
        m = m_new;
      }
    }
    workgroupBarrier();
  }
  if (has_query) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < D4; d++) { out[(t * params.heads + head) * D4 + d] = acc[d] * inv; }
    lse[t * params.heads + head] = select(NEG_INF, m + log(l), l > 0.0);
  }
}
`;
}

export const SPLIT_THREADS = 64;
export const SPLIT_MAX_CHUNK = 256;

/**
 * Flash-decoding: a workgroup takes one (query, head, chunk of keys). Threads score the chunk's
 * keys in parallel, reduce max and sum in workgroup memory, then D/4 threads accumulate P·V with
 * coalesced reads of V rows. Partial (o, lse) go to part_o [split][T*heads][D] and part_lse
 * [split][T*heads], merged by mergeWgsl.
 * Bindings: q, part_o, part_lse, params, then the common ones.
 */
export function splitWgsl(v: AttentionVariant): string {
  const common = attentionCommonWgsl(v, 4);
  return /* wgsl */ `
${paramsWgsl}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> part_lse: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${common.code}
var<workgroup> q_shared: array<vec4<f32>, ${v.headDim / 4}>;
var<workgroup> scores: array<f32, ${SPLIT_MAX_CHUNK}>;
var<workgroup> slots: array<u32, ${SPLIT_MAX_CHUNK}>;
var<workgroup> reduce: array<f32, ${SPLIT_THREADS}>;

@compute @workgroup_size(${SPLIT_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wg.x;
  let row = wg.y; // t * heads + head
  let t = row / params.heads;
  let head = row % params.heads;
  let kv_head = head / (params.heads / params.kv_heads);
  let qs = params.query_start + t;
  let begin = split * params.chunk;
  let end = min(begin + params.chunk, virtual_len(kv_head));
  let n = select(0u, end - begin, end > begin);

  for (var d = lid; d < D4; d += ${SPLIT_THREADS}u) { q_shared[d] = q[row * D4 + d] * params.scale; }
  workgroupBarrier();

  var local_max = NEG_INF;
  for (var j = lid; j < n; j += ${SPLIT_THREADS}u) {
    let slot = key_slot(kv_head, begin + j);
    slots[j] = slot;
    var s = NEG_INF;
    if (visible(t, qs, slot)) {
      let phys = physical_slot(slot);
      s = bias_of(slot);
      for (var d = 0u; d < D4; d++) { s += dot(q_shared[d], load_k(phys, kv_head, d)); }
    }
    scores[j] = s;
    local_max = max(local_max, s);
  }
  reduce[lid] = local_max;
  workgroupBarrier();
  for (var stride = ${SPLIT_THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { reduce[lid] = max(reduce[lid], reduce[lid + stride]); }
    workgroupBarrier();
  }
  let m = reduce[0];
  workgroupBarrier();

  var local_sum = 0.0;
  for (var j = lid; j < n; j += ${SPLIT_THREADS}u) {
    let p = select(0.0, exp(scores[j] - m), scores[j] > NEG_INF);
    scores[j] = p;
    local_sum += p;
  }
  reduce[lid] = local_sum;
  workgroupBarrier();
  for (var stride = ${SPLIT_THREADS / 2}u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { reduce[lid] += reduce[lid + stride]; }
    workgroupBarrier();
  }
  let l = reduce[0];

  let out_row = split * params.tokens * params.heads + row;
  for (var d = lid; d < D4; d += ${SPLIT_THREADS}u) {
    var o = vec4<f32>(0.0);
    for (var j = 0u; j < n; j++) {
      let p = scores[j];
      if (p > 0.0) { o += p * load_v(physical_slot(slots[j]), kv_head, d); }
    }
    part_o[out_row * D4 + d] = select(vec4<f32>(0.0), o / l, l > 0.0);
  }
  if (lid == 0u) { part_lse[out_row] = select(NEG_INF, m + log(l), l > 0.0); }
}
`;
}

/**
 * Merges S partial results by (output, log-sum-exp): M = max lse_s, lse = M + log Σ exp(lse_s − M),
 * o = Σ exp(lse_s − lse) o_s. Empty parts (lse = −∞) weigh nothing. One workgroup per row.
 * Bindings: part_o, part_lse, out, lse, params.
 */
export function mergeWgsl(headDim: number): string {
  return /* wgsl */ `
${paramsWgsl}
@group(0) @binding(0) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> part_lse: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
const D4: u32 = ${headDim / 4}u;
const NEG_INF: f32 = -3.0e38;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * groups.x;
  let rows = params.tokens * params.heads;
  if (row >= rows) { return; }
  var m = NEG_INF;
  for (var s = 0u; s < params.splits; s++) { m = max(m, part_lse[s * rows + row]); }
  var total = 0.0;
  for (var s = 0u; s < params.splits; s++) {
    let x = part_lse[s * rows + row];
    total += select(0.0, exp(x - m), x > NEG_INF);
  }
  let merged = select(NEG_INF, m + log(total), total > 0.0);
  for (var d = lid; d < D4; d += 32u) {
    var o = vec4<f32>(0.0);
    for (var s = 0u; s < params.splits; s++) {
      let x = part_lse[s * rows + row];
      if (x > NEG_INF) { o += exp(x - merged) * part_o[(s * rows + row) * D4 + d]; }
    }
    out[row * D4 + d] = o;
  }
  if (lid == 0u) { lse[row] = merged; }
}
`;
}

/**
 * Attention mass: mass[kv_head][slot] (+)= Σ over queries in [range_start, range_end) and the
 * query heads of kv_head of exp(s − lse), recomputing s; the probabilities are never stored.
 * One thread per (kv head, slot). Bindings: q, lse, mass, params, then the common ones.
 */
export function massWgsl(v: AttentionVariant, noised = false): string {
  const common = attentionCommonWgsl(v, 4);
  const member = v.mask === 'block-sparse'
    ? `var listed = false;
  let count = min(block_counts[kv_head], params.mask_c);
  for (var b = 0u; b < count; b++) { listed = listed || blocks[kv_head * params.mask_c + b] == slot / params.mask_a; }
  if (!listed) { store_mass(kv_head, slot, 0.0); return; }`
    : '';
  return /* wgsl */ `
${paramsWgsl}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> lse: array<f32>;
@group(0) @binding(2) var<storage, read_write> mass: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${common.code}
${noised ? gumbelWgsl : ''}
fn store_mass(kv_head: u32, slot: u32, value: f32) {
  let i = kv_head * params.mass_stride + slot;
  mass[i] = select(value, mass[i] + value, params.accumulate != 0u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let kv_head = gid.y;
  let slot = gid.x;
  // V is not read here, but the bindings stay the same as attention's (layout 'auto' drops unused ones).
  _ = &kv_v;${v.format === 'int8' || v.format === 'int4' ? '\n  _ = &kv_v_scales;' : ''}
  if (slot >= params.kv_len || kv_head >= params.kv_heads) { return; }
  ${member}
  let group = params.heads / params.kv_heads;
  let phys = physical_slot(slot);
  var k: array<vec4<f32>, ${v.headDim / 4}>;
  for (var d = 0u; d < D4; d++) { k[d] = load_k(phys, kv_head, d); }
  var total = 0.0;
  for (var t = params.range_start; t < params.range_end; t++) {
    if (!visible(t, params.query_start + t, slot)) { continue; }
    for (var h = kv_head * group; h < (kv_head + 1u) * group; h++) {
      var s = bias_of(slot);
      for (var d = 0u; d < D4; d++) { s += dot(q[(t * params.heads + h) * D4 + d] * params.scale, k[d]); }
      ${noised ? 's = (s + gumbel(params.query_start + t, h, slot)) * params.noise_inv_tau;' : ''}
      total += exp(s - lse[t * params.heads + h]);
    }
  }
  store_mass(kv_head, slot, total);
}
`;
}

/**
 * Log-sum-exp of each query row's scores over the keys it sees, without attention's output: the
 * normaliser for attentionMass when no attention pass ran (TokenSelect scores keys before it
 * attends), or, `noised`, of the noised scores (s + g) / τ (Keyformer, B3). One thread per row.
 * Bindings: q, lse, params, then the common ones.
 */
export function scoreLseWgsl(v: AttentionVariant, noised: boolean): string {
  const common = attentionCommonWgsl(v, 3);
  return /* wgsl */ `
${paramsWgsl}
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
${common.code}
${noised ? gumbelWgsl : ''}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  _ = &kv_v;${v.format === 'int8' || v.format === 'int4' ? '\n  _ = &kv_v_scales;' : ''}
  let row = gid.x + gid.y * groups.x * 64u; // grid() spreads many rows over y
  if (row >= params.tokens * params.heads) { return; }
  let t = row / params.heads;
  let head = row % params.heads;
  let kv_head = head / (params.heads / params.kv_heads);
  let qs = params.query_start + t;
  var m = NEG_INF;
  var l = 0.0;
  for (var i = 0u; i < virtual_len(kv_head); i++) {
    let slot = key_slot(kv_head, i);
    if (!visible(t, qs, slot)) { continue; }
    let phys = physical_slot(slot);
    var s = bias_of(slot);
    for (var d = 0u; d < D4; d++) { s += dot(q[row * D4 + d] * params.scale, load_k(phys, kv_head, d)); }
    ${noised ? 's = (s + gumbel(qs, head, slot)) * params.noise_inv_tau;' : ''}
    if (s > m) { l = l * exp(m - s) + 1.0; m = s; } else { l += exp(s - m); }
  }
  lse[row] = select(NEG_INF, m + log(l), l > 0.0);
}
`;
}

/**
 * Merges two attention results over disjoint key sets (prefix + tree, sparse + local, LM-Infinite's
 * global and local branches) by their log-sum-exp, as mergeWgsl does for split chunks.
 * Bindings: o_a, lse_a, o_b, lse_b, out, lse, params (rows).
 */
export function mergePairWgsl(headDim: number): string {
  return /* wgsl */ `
struct Params { rows: u32 }
@group(0) @binding(0) var<storage, read> o_a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> lse_a: array<f32>;
@group(0) @binding(2) var<storage, read> o_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lse_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;
const D4: u32 = ${headDim / 4}u;
const NEG_INF: f32 = -3.0e38;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= params.rows * D4) { return; }
  let row = i / D4;
  let a = lse_a[row];
  let b = lse_b[row];
  let m = max(a, b);
  let wa = select(0.0, exp(a - m), a > NEG_INF);
  let wb = select(0.0, exp(b - m), b > NEG_INF);
  let total = wa + wb;
  out[i] = select(vec4<f32>(0.0), (wa * o_a[i] + wb * o_b[i]) / total, total > 0.0);
  if (i % D4 == 0u) { lse[row] = select(NEG_INF, m + log(total), total > 0.0); }
}
`;
}
