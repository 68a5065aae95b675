// Embedding gather: out[i][0..K) = row ids[i] of a table in any GGUF format, dequantized with
// the format's `dequant8` (src/shaders/quant.ts). One thread per 8 values of an output row, so
// a row's reads are consecutive across threads. A table split into parts is one dispatch per
// part: each writes the tokens whose id falls in its rows; the first part also writes zero rows
// for ids past the end of the table, so a bad id reads nothing out of bounds.
import type { GGMLTypeId } from '../formats/ggml-types';
import { dequantWgsl } from './quant';

export const EMBEDDING_WORKGROUP = 64;

export function embeddingWgsl(type: GGMLTypeId): string {
  return /* wgsl */ `
struct Params {
  count: u32,      // tokens
  K: u32,          // row length
  row_bytes: u32,  // bytes per table row
  first_row: u32,  // the table row this part starts at
  part_rows: u32,  // rows in this part
  table_rows: u32, // rows in the whole table
  zero_bad_ids: u32, // 1 in the dispatch that writes zero rows for ids >= table_rows
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

${dequantWgsl(type)}

@compute @workgroup_size(${EMBEDDING_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let chunks = (params.K + 7u) / 8u;
  let index = gid.x + gid.y * groups.x * ${EMBEDDING_WORKGROUP}u;
  if (index >= params.count * chunks) { return; }
  let token = index / chunks;
  let k = (index % chunks) * 8u;
  let id = ids[token];
  var v: F32x8;
  if (id >= params.table_rows) {
    if (params.zero_bad_ids == 0u) { return; }
  } else {
    if (id < params.first_row || id - params.first_row >= params.part_rows) { return; }
    v = dequant8((id - params.first_row) * params.row_bytes, k, params.K);
  }
  let base = token * params.K + k;
  for (var i = 0u; i < 4u; i++) {
    if (k + i < params.K) { out[base + i] = v.a[i]; }
    if (k + 4u + i < params.K) { out[base + 4u + i] = v.b[i]; }
  }
}
`;
}
