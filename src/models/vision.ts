// A CLIP- or SigLIP-style vision tower and LLaVA's MLP projector on the GPU, loaded from
// llama.cpp's mmproj GGUF (`general.architecture = clip`), reading its own metadata: image and
// patch size, width, heads, blocks, LayerNorm epsilon, mean/std, projector type. The forward pass:
//
//   patches (CPU: resize is the caller's, normalise and cut into 3·P·P rows) → patch embedding (a
//   matmul with the conv kernel as [dim][3·P·P]) → class token first (if any), + position
//   embeddings → pre-LayerNorm (if any) → blocks of [LN → Q/K/V → non-causal attention → out →
//   residual; (ToMe / PiToMe: merge tokens); LN → up → GELU → down → residual] → post-LayerNorm (if
//   any) → hidden states; (CLS attention / HiPrune / ToDRE: keep some patch tokens) → projector over
//   the patch tokens: mm.0 → GELU → mm.2.
//
// Attention reads K/V from a one-page-per-16-tokens cache like the decoder's (mask 'none'). Every
// pruning and merging decision is made on the GPU in the tower's one submission.
import type { GGUFFile } from '../formats/gguf-reader';
import { dequantize } from '../formats/quantize';
import { BINDING_ALIGN, type Binding, type Gpu, GpuError, align, check } from '../gpu';
import { activation } from '../kernels/activation';
import { attention, attentionMass } from '../kernels/attention';
import { addInPlace, copy } from '../kernels/elementwise';
import { type KvCache, PAGE, createKvCache, destroyKvCache, identityPageTable, kvWrite } from '../kernels/kv-cache';
import { type QuantizedWeight, matmul, uploadWeight } from '../kernels/matmul';
import { layerNorm } from '../kernels/norm';
import { selectTopK } from '../kernels/select';
import { type MergeMethod, maxMerges, mergePlan, mergeTokens } from '../kernels/token-merge';
import { columnSums, packRows, hipruneScores, kCenter } from '../kernels/vision-prune';

export interface VisionConfig {
  imageSize: number;
  patchSize: number;
  /** Width of the tower. */
  hidden: number;
  heads: number;
  blocks: number;
  ffn: number;
  eps: number;
  /** Width of the projector's output (the language model's). */
  projection: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Patch tokens (the class token, when there is one, comes first, before them). */
  patches: number;
  /** A class token (CLIP) or none (SigLIP). */
  classToken: boolean;
}

/** Pruning at the tower's output: which method picks the `keep` patch tokens that go on. */
export interface EncoderPruning {
  method: 'cls' | 'hiprune' | 'todre' | 'tome' | 'pitome';
  keep: number;
}

/** HiPrune's object-centric layer, as a share of the depth (CLIP-L/24: layer 9), and its anchors and buffers' share of the budget (α). */
export const HIPRUNE_OBJECT_DEPTH = 9 / 24;
export const HIPRUNE_ANCHOR_SHARE = 0.1;

/**
 * Tokens each block merges away to go from n patches to `keep` (ToMe's constant r, spread evenly;
 * a block never merges more than its bipartite split allows, later blocks take the rest).
 */
export function mergeSchedule(n: number, keep: number, blocks: number, method: MergeMethod, protect = 1): number[] {
  const plan = (spread: boolean) => {
    let tokens = n + protect;
    const merges = Array.from({ length: blocks }, (_, l) => {
      const wanted = tokens - protect - keep;
      const r = Math.min(maxMerges(tokens, protect, method), spread ? Math.ceil(wanted / (blocks - l)) : wanted);
      tokens -= r;
      return r;
    });
    return { merges, reached: tokens - protect };
  };
  // Evenly if that gets there, else as early as possible (as far as merging can go).
  const even = plan(true);
  if (even.reached === keep) return even.merges;
  const early = plan(false);
  if (early.reached === keep) return early.merges;
  throw new GpuError('bad-argument', `${method} cannot merge ${n} patches down to ${keep} in ${blocks} blocks (at least ${early.reached})`);
}

/**
 * Position embeddings of a `from` x `from` patch grid (rows of `width`, row-major) resized to `to` x
 * `to` by bicubic interpolation, as PyTorch's interpolate(mode='bicubic', align_corners=False)
 * that CLIP and SigLIP use for other image sizes: cubic convolution with a = -0.75, source
 * coordinate (i + 0.5)·from/to − 0.5, indices clamped at the border. The same size is a copy.
 */
export function interpolatePositions(table: Float32Array, from: number, to: number, width: number): Float32Array {
  if (from === to) return table.slice(0, from * from * width);
  const cubic = (x: number) => {
    const a = -0.75, t = Math.abs(x);
    return t <= 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : t < 2 ? ((a * t - 5 * a) * t + 8 * a) * t - 4 * a : 0;
  };
  // Per output index, the 4 source indices and their weights along one axis.
  const taps = Array.from({ length: to }, (_, i) => {
    const source = ((i + 0.5) * from) / to - 0.5;
    const base = Math.floor(source);
    return [-1, 0, 1, 2].map((k) => ({ at: Math.min(from - 1, Math.max(0, base + k)), weight: cubic(source - (base + k)) }));
  });
  const rows = new Float64Array(from * to * width); // [from][to][width]: along x first
  for (let y = 0; y < from; y++) for (let x = 0; x < to; x++) for (const { at, weight } of taps[x]) {
    for (let d = 0; d < width; d++) rows[(y * to + x) * width + d] += weight * table[(y * from + at) * width + d];
  }
  const out = new Float32Array(to * to * width);
  for (let y = 0; y < to; y++) for (const { at, weight } of taps[y]) for (let x = 0; x < to; x++) {
    for (let d = 0; d < width; d++) out[(y * to + x) * width + d] += weight * rows[(at * to + x) * width + d];
  }
  return out;
}

/** Part i of a buffer cut into aligned parts of `floats` f32 each; `n` parts from there. */
function part(buffer: GPUBuffer, i: number, floats: number, n = 1): GPUBufferBinding {
  const bytes = align(floats * 4, BINDING_ALIGN);
  return { buffer, offset: i * bytes, size: (n - 1) * bytes + floats * 4 };
}

interface Linear { w: QuantizedWeight; b: GPUBuffer }
interface Norm { w: GPUBuffer; b: GPUBuffer }
/** A norm the tower may not have: CLIP has a LayerNorm before the blocks, SigLIP one after. */
type OptionalNorm = Norm | null;
interface Block { ln1: Norm; q: Linear; k: Linear; v: Linear; out: Linear; ln2: Norm; up: Linear; down: Linear }

/** The mmproj's configuration, checked: a CLIP- or SigLIP-style vision tower with an MLP (LLaVA) projector. */
export function visionConfigFromGGUF(file: GGUFFile): VisionConfig {
  const fail = (message: string): never => { throw new GpuError('unsupported', `mmproj: ${message}`); };
  if (file.getString('general.architecture') !== 'clip') fail(`architecture ${JSON.stringify(file.getString('general.architecture'))} is not clip`);
  if (file.getBool('clip.has_vision_encoder') === false) fail('the file has no vision encoder');
  const projector = file.getString('clip.projector_type') ?? 'mlp';
  if (projector !== 'mlp') fail(`projector type ${JSON.stringify(projector)} is not supported (mlp, LLaVA's)`);
  const number = (key: string) => file.getNumber(`clip.vision.${key}`) ?? fail(`clip.vision.${key} is missing`);
  const triple = (key: string) => {
    const value = file.get(`clip.vision.${key}`);
    const numbers = value instanceof Float32Array || value instanceof Float64Array ? Array.from(value) : value;
    return Array.isArray(numbers) && numbers.length === 3 && numbers.every((x) => typeof x === 'number') ? (numbers as [number, number, number]) : fail(`clip.vision.${key} is not three numbers`);
  };
  const imageSize = number('image_size');
  const patchSize = number('patch_size');
  if (imageSize % patchSize) fail(`image size ${imageSize} is not a multiple of the patch size ${patchSize}`);
  const config: VisionConfig = {
    imageSize, patchSize, hidden: number('embedding_length'), heads: number('attention.head_count'), blocks: number('block_count'),
    ffn: number('feed_forward_length'), eps: number('attention.layer_norm_epsilon'), projection: number('projection_dim'),
    mean: triple('image_mean'), std: triple('image_std'), patches: (imageSize / patchSize) ** 2, classToken: !!file.tensor('v.class_embd'),
  };
  if (config.hidden % config.heads) fail(`width ${config.hidden} is not a multiple of ${config.heads} heads`);
  return config;
}

/**
 * Image rows for the patch embedding: `rgb` is uint8 [size][size][3] at the model's image size;
 * out[p][c·P·P + y·P + x] is channel c of pixel (x, y) of patch p (row-major patches), normalised
 * by the model's mean and std, the order of the conv kernel's [dim][3][P][P] weights.
 */
export function imagePatches(config: VisionConfig, rgb: Uint8Array): Float32Array {
  const { imageSize: size, patchSize: P, mean, std } = config;
  if (rgb.length !== size * size * 3) throw new GpuError('bad-argument', `an image of ${rgb.length} bytes is not ${size}x${size} RGB`);
  const perRow = size / P;
  const out = new Float32Array(config.patches * 3 * P * P);
  for (let py = 0; py < perRow; py++) for (let px = 0; px < perRow; px++) {
    const base = (py * perRow + px) * 3 * P * P;
    for (let c = 0; c < 3; c++) for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) {
      const value = rgb[((py * P + y) * size + px * P + x) * 3 + c] / 255;
      out[base + (c * P + y) * P + x] = (value - mean[c]) / std[c];
    }
  }
  return out;
}

export class VisionEncoder {
  private constructor(
    readonly gpu: Gpu,
    readonly config: VisionConfig,
    private readonly w: {
      patch: Linear; classToken: GPUBuffer | null; positions: GPUBuffer; preLn: OptionalNorm; postLn: OptionalNorm; blocks: Block[]; mm0: Linear; mm2: Linear; buffers: GPUBuffer[];
    },
  ) {}

  /**
   * `imageSize`: run the tower at another image size (a multiple of the patch size) than it was
   * trained at, its position embeddings interpolated to the new patch grid (interpolatePositions).
   */
  static async load(gpu: Gpu, file: GGUFFile, options: { imageSize?: number } = {}): Promise<VisionEncoder> {
    const native = visionConfigFromGGUF(file);
    const imageSize = options.imageSize ?? native.imageSize;
    if (!Number.isInteger(imageSize) || imageSize < native.patchSize || imageSize % native.patchSize) {
      throw new GpuError('bad-argument', `image size ${imageSize} is not a positive multiple of the patch size ${native.patchSize}`);
    }
    const config: VisionConfig = { ...native, imageSize, patches: (imageSize / native.patchSize) ** 2 };
    const buffers: GPUBuffer[] = [];
    const tensor = (name: string) => file.tensor(name) ?? (() => { throw new GpuError('unsupported', `mmproj: tensor ${name} is missing`); })();
    const vector = async (name: string, n: number) => {
      const info = tensor(name);
      if (info.elements !== n) throw new GpuError('unsupported', `mmproj: ${name} has ${info.elements} values, expected ${n}`);
      const buffer = gpu.upload(dequantize(info.type, await file.readTensor(info), info.elements), name);
      buffers.push(buffer);
      return buffer;
    };
    const linear = async (name: string, rows: number, cols: number): Promise<Linear> => {
      const info = tensor(`${name}.weight`);
      if (info.elements !== rows * cols) throw new GpuError('unsupported', `mmproj: ${name}.weight has ${info.elements} values, expected ${rows}x${cols}`);
      const w = uploadWeight(gpu, info.type, rows, cols, await file.readTensor(info), { label: name });
      buffers.push(...w.parts.map((p) => p.buffer));
      return { w, b: await vector(`${name}.bias`, rows) };
    };
    const norm = async (name: string): Promise<Norm> => ({ w: await vector(`${name}.weight`, config.hidden), b: await vector(`${name}.bias`, config.hidden) });
    const { hidden, ffn, patchSize: P } = config;
    // The class token's row as it is, the patches' grid interpolated when the size differs.
    const positions = async () => {
      const cls = Number(config.classToken);
      const info = tensor('v.position_embd.weight');
      if (info.elements !== (native.patches + cls) * hidden) throw new GpuError('unsupported', `mmproj: v.position_embd.weight has ${info.elements} values, expected ${(native.patches + cls) * hidden}`);
      const table = dequantize(info.type, await file.readTensor(info), info.elements);
      const grid = interpolatePositions(table.subarray(cls * hidden), native.imageSize / P, imageSize / P, hidden);
      const out = new Float32Array((config.patches + cls) * hidden);
      out.set(table.subarray(0, cls * hidden));
      out.set(grid, cls * hidden);
      const buffer = gpu.upload(out, 'v.position_embd.weight');
      buffers.push(buffer);
      return buffer;
    };
    try {
      const blocks: Block[] = [];
      for (let i = 0; i < config.blocks; i++) {
        const p = `v.blk.${i}.`;
        blocks.push({
          ln1: await norm(`${p}ln1`), q: await linear(`${p}attn_q`, hidden, hidden), k: await linear(`${p}attn_k`, hidden, hidden),
          v: await linear(`${p}attn_v`, hidden, hidden), out: await linear(`${p}attn_out`, hidden, hidden), ln2: await norm(`${p}ln2`),
          up: await linear(`${p}ffn_up`, ffn, hidden), down: await linear(`${p}ffn_down`, hidden, ffn),
        });
      }
      return new VisionEncoder(gpu, config, {
        patch: await linear('v.patch_embd', hidden, 3 * P * P), classToken: config.classToken ? await vector('v.class_embd', hidden) : null,
        positions: await positions(),
        preLn: file.tensor('v.pre_ln.weight') ? await norm('v.pre_ln') : null, postLn: file.tensor('v.post_ln.weight') ? await norm('v.post_ln') : null, blocks,
        mm0: await linear('mm.0', config.projection, hidden), mm2: await linear('mm.2', config.projection, config.projection), buffers,
      });
    } catch (error) {
      for (const b of buffers) b.destroy();
      throw error;
    }
  }

  /**
   * One image (uint8 RGB at the model's size) through the tower and the projector: the hidden
   * states f32 [class token + kept][hidden] (the class token first, if any) and the image embeddings f32
   * [kept][projection] the language model reads; with `pruning`, only `keep` patch tokens reach
   * the projector (src/engine/vision/pruning.ts), and patchMap says which kept token carries each
   * patch (-1: pruned).
   */
  async encode(rgb: Uint8Array, pruning?: EncoderPruning): Promise<{ hidden: Float32Array; embeddings: Float32Array; patchMap: Int32Array }> {
    const { gpu, config: c, w } = this;
    const N = c.patches;
    const cls = Number(c.classToken); // rows before the patches
    const T = N + cls;
    const D = c.hidden;
    const keep = pruning?.keep ?? N;
    check(Number.isInteger(keep) && keep >= 1 && keep <= N, `encode: cannot keep ${keep} of ${N} patches`);
    const merging = pruning?.method === 'tome' || pruning?.method === 'pitome' ? { method: pruning.method, merges: mergeSchedule(N, keep, c.blocks, pruning.method, cls) } : null;
    const selecting = pruning && !merging ? (pruning.method as 'cls' | 'hiprune' | 'todre') : null;
    const headDim = D / c.heads;
    const f32 = (n: number, label: string) => gpu.buffer(Math.max(n, 1) * 4, label);
    const scratch = {
      pixels: gpu.upload(imagePatches(c, rgb), 'image patches'),
      x: f32(T * D, 'vision x'), h: f32(T * D, 'vision h'), q: f32(T * D, 'vision q'), k: f32(T * D, 'vision k'), v: f32(T * D, 'vision v'),
      attn: f32(T * D, 'vision attention'), lse: f32(T * c.heads, 'vision lse'), up: f32(T * c.ffn, 'vision ffn'),
      mid: f32(keep * c.projection, 'projector mid'), out: f32(keep * c.projection, 'image embeddings'),
      // Pruning: attention mass [heads][T] at two layers, per-patch scores, the kept indices.
      mass: gpu.buffer(2 * align(c.heads * T * 4, BINDING_ALIGN), 'vision attention mass'), scores: gpu.buffer(2 * align(N * 4, BINDING_ALIGN), 'patch evidence'),
      choice: f32(N, 'patch scores'),
      kept: gpu.buffer(N * 4, 'kept patches'), count: gpu.buffer(4, 'kept count'),
      // Merging: each token's summed keys, each block's plan, the tokens' sizes (ping-pong) and their logs.
      metric: f32(T * headDim, 'merge metric'), plans: gpu.buffer(c.blocks * align(T * 4, BINDING_ALIGN), 'merge plans'),
      sizes: gpu.upload(new Float32Array(T).fill(1), 'token sizes'), merged: f32(T, 'merged sizes'), logSizes: f32(T, 'token log sizes'),
    };
    const capacity = Math.ceil(T / PAGE) * PAGE;
    const pageTable = gpu.upload(identityPageTable(capacity), 'vision page table');
    const slots = gpu.upload(Uint32Array.from({ length: T }, (_, i) => i), 'vision slots');
    // The layers whose attention a method reads: the class token's row at the last (C1; without a
    // class token, every row's: K4(b)); every row's at an object-centric middle layer and at the
    // last (HiPrune).
    const last = c.blocks - 1;
    const objectLayer = Math.min(last, Math.floor(c.blocks * HIPRUNE_OBJECT_DEPTH));
    const massAt = new Map<number, { slot: number; rows: [number, number] }>(
      selecting === 'cls' ? [[last, { slot: 0, rows: [0, cls || T] }]]
        : selecting === 'hiprune' ? [[objectLayer, { slot: 0, rows: [0, T] }], [last, { slot: 1, rows: [0, T] }]] : [],
    );
    let cache: KvCache | null = null;
    try {
      cache = createKvCache(gpu, { capacity, kvHeads: c.heads, headDim, format: 'f32', pageTable });
      const kv = cache;
      const linear = (pass: GPUComputePassEncoder, l: Linear, x: GPUBuffer | GPUBufferBinding, y: GPUBuffer | GPUBufferBinding, M: number) => matmul(gpu, pass, { x, w: l.w, y, M, bias: l.b });
      await gpu.run((pass) => {
        // Patch tokens after the class token, then the position embeddings over all.
        linear(pass, w.patch, scratch.pixels, scratch.h, N);
        if (w.classToken) copy(gpu, pass, { src: w.classToken, dst: scratch.x, n: D });
        copy(gpu, pass, { src: scratch.h, dst: scratch.x, n: N * D, dstOffset: cls * D });
        addInPlace(gpu, pass, { x: scratch.x, y: w.positions, n: T * D });
        if (w.preLn) layerNorm(gpu, pass, { x: scratch.x, weight: w.preLn.w, bias: w.preLn.b, rows: T, n: D, eps: c.eps });
        let tokens = T; // fewer after each merge
        let sizes = scratch.sizes, mergedSizes = scratch.merged;
        w.blocks.forEach((block, l) => {
          layerNorm(gpu, pass, { x: scratch.x, out: scratch.h, weight: block.ln1.w, bias: block.ln1.b, rows: tokens, n: D, eps: c.eps });
          linear(pass, block.q, scratch.h, scratch.q, tokens);
          linear(pass, block.k, scratch.h, scratch.k, tokens);
          linear(pass, block.v, scratch.h, scratch.v, tokens);
          kvWrite(gpu, pass, { cache: kv, k: scratch.k, v: scratch.v, slots, count: tokens });
          const attentionArgs = { q: scratch.q, cache: kv, T: tokens, numHeads: c.heads, kvLen: tokens, queryStart: 0, scale: 1 / Math.sqrt(headDim), mask: { kind: 'none' } } as const;
          // Proportional attention once tokens were merged: each key counts as many as it stands for.
          const keyBias = tokens < T ? scratch.logSizes : undefined;
          attention(gpu, pass, { ...attentionArgs, out: scratch.attn, lse: scratch.lse, keyBias });
          const capture = massAt.get(l);
          if (capture) {
            const mass = part(scratch.mass, capture.slot, c.heads * tokens);
            attentionMass(gpu, pass, { ...attentionArgs, lse: scratch.lse, mass, queryRange: capture.rows });
            // Per patch (the class token's own column is left out): the sum over heads.
            columnSums(gpu, pass, { x: mass, rows: c.heads, n: N, stride: tokens, start: cls, out: part(scratch.scores, capture.slot, N) });
          }
          linear(pass, block.out, scratch.attn, scratch.h, tokens);
          addInPlace(gpu, pass, { x: scratch.x, y: scratch.h, n: tokens * D });
          const r = merging?.merges[l] ?? 0;
          if (merging && r > 0) {
            // ToMe / PiToMe between attention and MLP, by the similarity of the block's keys (summed over heads).
            columnSums(gpu, pass, { x: scratch.k, rows: c.heads, n: headDim, stride: headDim, batches: tokens, batchStride: D, out: scratch.metric });
            const plan = part(scratch.plans, l, T);
            mergePlan(gpu, pass, { metric: scratch.metric, N: tokens, D: headDim, r, protect: cls, method: merging.method, plan });
            mergeTokens(gpu, pass, { x: scratch.x, sizes, plan, N: tokens, width: D, merged: tokens - r, out: scratch.h, outSizes: mergedSizes, outLogSizes: scratch.logSizes });
            copy(gpu, pass, { src: scratch.h, dst: scratch.x, n: (tokens - r) * D });
            [sizes, mergedSizes] = [mergedSizes, sizes];
            tokens -= r;
          }
          layerNorm(gpu, pass, { x: scratch.x, out: scratch.h, weight: block.ln2.w, bias: block.ln2.b, rows: tokens, n: D, eps: c.eps });
          linear(pass, block.up, scratch.h, scratch.up, tokens);
          activation(gpu, pass, { kind: 'gelu-tanh', x: scratch.up, n: tokens * c.ffn });
          linear(pass, block.down, scratch.up, scratch.h, tokens);
          addInPlace(gpu, pass, { x: scratch.x, y: scratch.h, n: tokens * D });
        });
        if (w.postLn) layerNorm(gpu, pass, { x: scratch.x, weight: w.postLn.w, bias: w.postLn.b, rows: tokens, n: D, eps: c.eps });
        // The patch tokens that go on (the class token is not passed on), then the projector.
        if (selecting) {
          const patchScores = this.recordPatchScores(pass, selecting, keep, scratch);
          selectTopK(gpu, pass, { x: patchScores, rows: 1, n: N, k: keep, out: scratch.kept, counts: scratch.count, outStride: N });
          packRows(gpu, pass, { x: scratch.x, ids: scratch.kept, count: keep, width: D, first: cls, out: scratch.h });
        } else {
          copy(gpu, pass, { src: scratch.x, dst: scratch.h, n: keep * D, srcOffset: cls * D });
        }
        linear(pass, w.mm0, scratch.h, scratch.mid, keep);
        activation(gpu, pass, { kind: 'gelu-tanh', x: scratch.mid, n: keep * c.projection });
        linear(pass, w.mm2, scratch.mid, scratch.out, keep);
      }, 'vision encoder');
      const patchMap = Int32Array.from({ length: N }, (_, i) => i);
      if (selecting) {
        patchMap.fill(-1);
        (await gpu.readU32(scratch.kept, keep)).forEach((patch, i) => { patchMap[patch] = i; });
      }
      if (merging) {
        // Follow each patch (token 1 + p) through every block's plan; the class token stays token 0.
        const plans = await gpu.readU32(scratch.plans);
        const token = Int32Array.from({ length: N }, (_, p) => p + cls);
        for (const [l, r] of merging.merges.entries()) {
          const plan = (l * align(T * 4, BINDING_ALIGN)) / 4;
          if (r > 0) token.forEach((t, p) => { token[p] = plans[plan + t]; });
        }
        token.forEach((t, p) => { patchMap[p] = t - cls; });
      }
      return { hidden: await gpu.readF32(scratch.x, (keep + cls) * D), embeddings: await gpu.readF32(scratch.out, keep * c.projection), patchMap };
    } finally {
      if (cache) destroyKvCache(cache);
      for (const b of [...Object.values(scratch), pageTable, slots]) b.destroy();
    }
  }

  /**
   * One score per patch, the top `keep` of which are kept: the class token's attention (C1);
   * HiPrune's anchors and buffers, then the last layer's attention (C2); ToDRE's k-center pick
   * order over the final patch features (C3). Returns the binding the scores are in.
   */
  private recordPatchScores(pass: GPUComputePassEncoder, method: 'cls' | 'hiprune' | 'todre', keep: number, s: { x: GPUBuffer; scores: GPUBuffer; choice: GPUBuffer }): Binding {
    const { gpu, config: c } = this;
    const N = c.patches;
    const scores = (i: number, n = 1) => part(s.scores, i, N, n);
    switch (method) {
      case 'cls':
        return scores(0);
      case 'hiprune': {
        const flagged = Math.max(1, Math.floor(HIPRUNE_ANCHOR_SHARE * keep));
        hipruneScores(gpu, pass, { objectScores: scores(0), lastScores: scores(1), n: N, width: c.imageSize / c.patchSize, flagged, scores: s.choice });
        return s.choice;
      }
      case 'todre':
        kCenter(gpu, pass, { features: s.x, n: N, dim: c.hidden, k: keep, first: Number(c.classToken), scores: s.choice, work: scores(0, 2) });
        return s.choice;
    }
  }

  destroy(): void {
    for (const b of this.w.buffers) b.destroy();
  }
}
