// A float64 CPU reference of the CLIP-style tower in src/models/vision.ts (no projector), keeping
// every layer's attention probabilities: the evidence CLS-attention and HiPrune pruning read; and
// ToMe / PiToMe merging inside the blocks, from the float64 token-merge references.
import type { GGUFFile } from '../formats/gguf-reader';
import { dequantize } from '../formats/quantize';
import { type VisionConfig, imagePatches, interpolatePositions, visionConfigFromGGUF } from '../models/vision';
import { type MergeMethod, mergePlanReference, mergeTokensReference } from './token-merge';

export interface VisionReference {
  /** Hidden states after the last block (and the post-norm, if any), [class token + patches][hidden]. */
  hidden: Float64Array[];
  /** attention[layer][head][query][key] probabilities. */
  attention: Float64Array[][][];
  /** With merging: per block, where each token went (token-merge plans). */
  plans: Uint32Array[];
}

/** With `merge`, ToMe or PiToMe merges `merges[l]` tokens in block l, with proportional attention after. */
export async function visionForwardRef(file: GGUFFile, config: VisionConfig, rgb: Uint8Array, merge?: { method: MergeMethod; merges: number[] }): Promise<VisionReference> {
  const tensor = async (name: string) => {
    const info = file.tensor(name);
    if (!info) throw new Error(`no tensor ${name}`);
    return Float64Array.from(dequantize(info.type, await file.readTensor(info), info.elements));
  };
  const { hidden: D, heads, patchSize: P } = config;
  const N = config.patches;
  const headDim = D / heads;
  // y = W x + b with W [rows][cols] row-major.
  const linear = (w: Float64Array, b: Float64Array, x: ArrayLike<number>) => Float64Array.from(b, (bias, r) => {
    let s = bias;
    for (let c = 0; c < x.length; c++) s += w[r * x.length + c] * x[c];
    return s;
  });
  const layerNorm = (x: Float64Array, w: Float64Array, b: Float64Array) => {
    const mean = x.reduce((a, v) => a + v, 0) / x.length;
    const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + config.eps)) * w[i] + b[i]);
  };
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

  const pixels = imagePatches(config, rgb);
  const [patchW, patchB, table] = await Promise.all([tensor('v.patch_embd.weight'), tensor('v.patch_embd.bias'), tensor('v.position_embd.weight')]);
  const cls = config.classToken ? [await tensor('v.class_embd')] : [];
  // At another image size than the file's, the patch grid's positions are interpolated as the runtime does.
  const native = visionConfigFromGGUF(file);
  const grid = interpolatePositions(Float32Array.from(table.subarray(cls.length * D)), native.imageSize / P, config.imageSize / P, D);
  const positions = [...table.subarray(0, cls.length * D), ...grid];
  let x = [...cls, ...Array.from({ length: N }, (_, p) => linear(patchW, patchB, pixels.subarray(p * 3 * P * P, (p + 1) * 3 * P * P)))];
  x = x.map((row, t) => row.map((v, i) => v + positions[t * D + i]));
  // CLIP normalises before the blocks, SigLIP after them.
  const norm = async (name: string) => (file.tensor(`${name}.weight`) ? Promise.all([tensor(`${name}.weight`), tensor(`${name}.bias`)]) : null);
  const [preLn, postLn] = await Promise.all([norm('v.pre_ln'), norm('v.post_ln')]);
  if (preLn) x = x.map((row) => layerNorm(row, ...preLn));
  const attention: Float64Array[][][] = [];
  const plans: Uint32Array[] = [];
  let sizes = new Float64Array(x.length).fill(1);
  for (let l = 0; l < config.blocks; l++) {
    const t = (name: string) => tensor(`v.blk.${l}.${name}`);
    const [ln1w, ln1b, qw, qb, kw, kb, vw, vb, ow, ob, ln2w, ln2b, upw, upb, downw, downb] = await Promise.all(
      ['ln1.weight', 'ln1.bias', 'attn_q.weight', 'attn_q.bias', 'attn_k.weight', 'attn_k.bias', 'attn_v.weight', 'attn_v.bias', 'attn_out.weight', 'attn_out.bias',
        'ln2.weight', 'ln2.bias', 'ffn_up.weight', 'ffn_up.bias', 'ffn_down.weight', 'ffn_down.bias'].map(t),
    );
    const h = x.map((row) => layerNorm(row, ln1w, ln1b));
    const [q, k, v] = [[qw, qb], [kw, kb], [vw, vb]].map(([w, b]) => h.map((row) => linear(w, b, row)));
    const probs: Float64Array[][] = [];
    const mixed = x.map(() => new Float64Array(D));
    for (let head = 0; head < heads; head++) {
      const rows = q.map((qi, i) => {
        const scores = k.map((kj) => {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += qi[head * headDim + d] * kj[head * headDim + d];
          return s / Math.sqrt(headDim);
        }).map((s, j) => s + Math.log(sizes[j]));
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        const p = Float64Array.from(e, (v) => v / sum);
        p.forEach((w, j) => { for (let d = 0; d < headDim; d++) mixed[i][head * headDim + d] += w * v[j][head * headDim + d]; });
        return p;
      });
      probs.push(rows);
    }
    attention.push(probs);
    x = x.map((row, i) => {
      const o = linear(ow, ob, mixed[i]);
      return row.map((v, j) => v + o[j]);
    });
    const r = merge?.merges[l] ?? 0;
    if (merge && r > 0) {
      const T = x.length;
      const metric = Float32Array.from({ length: T * headDim }, (_, e) => {
        const [t, d] = [Math.floor(e / headDim), e % headDim];
        let sum = 0;
        for (let h = 0; h < heads; h++) sum += k[t][h * headDim + d];
        return sum;
      });
      const plan = mergePlanReference(metric, T, headDim, r, cls.length, merge.method);
      const merged = mergeTokensReference(Float32Array.from(x.flatMap((row) => [...row])), Float32Array.from(sizes), plan, T, D, T - r);
      x = Array.from({ length: T - r }, (_, t) => Float64Array.from(merged.out.subarray(t * D, (t + 1) * D)));
      sizes = Float64Array.from(merged.sizes);
      plans.push(plan);
    }
    x = x.map((row) => {
      const up = linear(upw, upb, layerNorm(row, ln2w, ln2b)).map(gelu);
      const down = linear(downw, downb, up);
      return row.map((v, j) => v + down[j]);
    });
  }
  if (postLn) x = x.map((row) => layerNorm(row, ...postLn));
  return { hidden: x, attention, plans };
}
