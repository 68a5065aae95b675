// WGSL for the KV cache: the quantize-on-write kernel and the read functions every attention
// kernel includes. Layouts are described in src/kernels/kv-cache.ts.
import type { KvFormat } from '../kernels/kv-cache';
import { halfRneWgsl } from './half';

export const KV_WRITE_WORKGROUP = 64;
const PAGE = 16;

/** Storage type of K/V data as bound for reading, per format. */
function dataType(format: KvFormat): string {
  return format === 'f32' ? 'vec4<f32>' : format === 'f16' ? 'vec2<u32>' : 'u32';
}

/** Logical slot -> physical slot through the page table (bound as `page_table`). */
export const physicalSlotWgsl = /* wgsl */ `
fn physical_slot(slot: u32) -> u32 { return page_table[slot / ${PAGE}u] * ${PAGE}u + slot % ${PAGE}u; }
`;

/** True when the format has a scales buffer (bound after K and V). */
export function kvHasScales(format: KvFormat): boolean {
  return format === 'int8' || format === 'int4';
}

/**
 * Declarations of kv_k, kv_v (and kv_k_scales, kv_v_scales for int8/int4) at the given bindings, and
 * load_k(phys, kv_head, d4) / load_v(...) returning elements 4*d4..4*d4+3 of that head as f32.
 */
export function kvReadWgsl(format: KvFormat, group: number, headDim: number, firstBinding: number, kvHeadsExpr: string): string {
  const type = dataType(format);
  const decls = `
@group(0) @binding(${firstBinding}) var<storage, read> kv_k: array<${type}>;
@group(0) @binding(${firstBinding + 1}) var<storage, read> kv_v: array<${type}>;${kvHasScales(format) ? `
@group(0) @binding(${firstBinding + 2}) var<storage, read> kv_k_scales: array<u32>;
@group(0) @binding(${firstBinding + 3}) var<storage, read> kv_v_scales: array<u32>;` : ''}`;
  const loader = (name: string, data: string, scales: string) => {
    const row = `(phys * ${kvHeadsExpr} + kv_head)`;
    const scale = `unpack2x16float(${scales}[${row} * ${headDim / group}u + (d4 * 4u) / ${group}u])`;
    switch (format) {
      case 'f32':
        return `fn ${name}(phys: u32, kv_head: u32, d4: u32) -> vec4<f32> { return ${data}[${row} * ${headDim / 4}u + d4]; }`;
      case 'f16':
        return `fn ${name}(phys: u32, kv_head: u32, d4: u32) -> vec4<f32> {
  let w = ${data}[${row} * ${headDim / 4}u + d4];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}`;
      case 'int8':
        return `fn ${name}(phys: u32, kv_head: u32, d4: u32) -> vec4<f32> {
  let w = ${data}[${row} * ${headDim / 4}u + d4];
  let q = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u);
  return vec4<f32>(q) * ${scale}.x;
}`;
      case 'int4':
        return `fn ${name}(phys: u32, kv_head: u32, d4: u32) -> vec4<f32> {
  let w = ${data}[${row} * ${headDim / 8}u + d4 / 2u] >> ((d4 % 2u) * 16u);
  let q = (vec4<u32>(w) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  let s = ${scale};
  return vec4<f32>(q) * s.x + s.y;
}`;
    }
  };
  return `${decls}
${loader('load_k', 'kv_k', 'kv_k_scales')}
${loader('load_v', 'kv_v', 'kv_v_scales')}
`;
}

/** One thread per (token, kv head, group): copies or quantizes G elements into the cache. */
export function kvWriteWgsl(format: KvFormat, group: number): string {
  const out = format === 'f32' ? 'f32' : 'u32';
  const body = (() => {
    switch (format) {
      case 'f32':
        return `for (var i = 0u; i < ${group}u; i++) { dst[dst_elem + i] = src[src_elem + i]; }`;
      case 'f16':
        return `for (var i = 0u; i < ${group}u; i += 2u) { dst[(dst_elem + i) / 2u] = pack_half_rne(vec2<f32>(src[src_elem + i], src[src_elem + i + 1u])); }`;
      case 'int8':
        return `var amax = 0.0;
  for (var i = 0u; i < ${group}u; i++) { amax = max(amax, abs(src[src_elem + i])); }
  // The stored f16 scale is what readers use, so quantize with it.
  let packed = pack_half_rne(vec2<f32>(amax / 127.0, 0.0));
  let scale = unpack2x16float(packed).x;
  let inv = select(0.0, 1.0 / scale, scale > 0.0);
  scales[scale_index] = packed;
  for (var i = 0u; i < ${group}u; i += 4u) {
    var word = 0u;
    for (var b = 0u; b < 4u; b++) {
      let q = i32(clamp(round(src[src_elem + i + b] * inv), -127.0, 127.0));
      word |= (bitcast<u32>(q) & 0xffu) << (8u * b);
    }
    dst[(dst_elem + i) / 4u] = word;
  }`;
      case 'int4':
        return `var lo = src[src_elem];
  var hi = lo;
  for (var i = 1u; i < ${group}u; i++) { lo = min(lo, src[src_elem + i]); hi = max(hi, src[src_elem + i]); }
  let packed = pack_half_rne(vec2<f32>((hi - lo) / 15.0, lo));
  let s = unpack2x16float(packed);
  let inv = select(0.0, 1.0 / s.x, s.x > 0.0);
  scales[scale_index] = packed;
  for (var i = 0u; i < ${group}u; i += 8u) {
    var word = 0u;
    for (var n = 0u; n < 8u; n++) {
      let q = u32(clamp(round((src[src_elem + i + n] - s.y) * inv), 0.0, 15.0));
      word |= q << (4u * n);
    }
    dst[(dst_elem + i) / 8u] = word;
  }`;
    }
  })();
  return /* wgsl */ `
struct Params { count: u32, kv_heads: u32, head_dim: u32, groups_per_head: u32, capacity: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> slots: array<u32>;
@group(0) @binding(2) var<storage, read> page_table: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<${out}>;
@group(0) @binding(4) var<uniform> params: Params;
${format === 'int8' || format === 'int4' ? '@group(0) @binding(5) var<storage, read_write> scales: array<u32>;' : ''}
${physicalSlotWgsl}
${format === 'f32' ? '' : halfRneWgsl}
@compute @workgroup_size(${KV_WRITE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * ${KV_WRITE_WORKGROUP}u;
  let per_token = params.kv_heads * params.groups_per_head;
  if (index >= params.count * per_token) { return; }
  let token = index / per_token;
  let head = (index % per_token) / params.groups_per_head;
  let g = index % params.groups_per_head;
  let phys = physical_slot(slots[token]);
  if (phys >= params.capacity) { return; } // a slot past the cache is dropped, never written out of bounds
  let src_elem = (token * params.kv_heads + head) * params.head_dim + g * ${group}u;
  let dst_elem = (phys * params.kv_heads + head) * params.head_dim + g * ${group}u;
  ${format === 'int8' || format === 'int4' ? 'let scale_index = (phys * params.kv_heads + head) * params.groups_per_head + g;' : ''}
  ${body}
}
`;
}

export const KV_MOVE_WORKGROUP = 64;

/**
 * Copies whole slots of one cache buffer (K, V or their scales; `row_words` u32 per slot) from
 * logical slot pairs[2i] to pairs[2i+1], pair after pair. Each thread owns one word column and
 * walks the pairs in order, so a pair may read a slot an earlier pair wrote, and never one a later
 * pair overwrites when the pairs move slots towards the front (speculative commit, compaction).
 * With `heads` > 1 each kv head's words (row_words / heads of them) follow their own `count`
 * pairs, pairs[head][count][2]: per-head eviction, where each head keeps different tokens.
 */
export const kvMoveWgsl = /* wgsl */ `
struct Params { count: u32, row_words: u32, heads: u32 }
@group(0) @binding(0) var<storage, read> pairs: array<u32>;
@group(0) @binding(1) var<storage, read> page_table: array<u32>;
@group(0) @binding(2) var<storage, read_write> data: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
${physicalSlotWgsl}
@compute @workgroup_size(${KV_MOVE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let w = gid.x;
  if (w >= params.row_words) { return; }
  let first = (w / (params.row_words / params.heads)) * params.count; // this head's first pair
  for (var i = 0u; i < params.count; i++) {
    let src_slot = physical_slot(pairs[2u * (first + i)]);
    let dst_slot = physical_slot(pairs[2u * (first + i) + 1u]);
    data[dst_slot * params.row_words + w] = data[src_slot * params.row_words + w];
  }
}
`;
