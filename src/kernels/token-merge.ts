// Token merging launchers (src/shaders/token-merge.ts): plan which tokens of a vision encoder's
// sequence merge (ToMe, PiToMe), then average the residual stream accordingly. Everything stays
// on the GPU, so a whole ViT with merging records into one submission.
//
// Proportional attention (ToMe): after a merge, pass outLogSizes as attention()'s keyBias with
// kvLen = merged. The attention kernels add keyBias[slot] to q·k·scale (after the scale, as ToMe's
// `attn * scale + size.log()`), and with mask 'none' slot j is output token j of the merge, so
// keys and values must be written to the cache in the merged order (slots 0..merged-1).
import { type Binding, type Gpu, check } from '../gpu';
import { MERGE_MAX_TOKENS, MERGE_WORKGROUP, type ScoreKind, mergeSourcesWgsl, mergeTokensWgsl, tokenAssignWgsl, tokenNormsWgsl, tokenRankWgsl, tokenScoreWgsl } from '../shaders/token-merge';
import { bindingBytes } from './matmul';

export { MERGE_MAX_TOKENS };
export type MergeMethod = 'tome' | 'pitome';

export interface MergePlanArgs {
  /** f32 [N][D]: the similarity metric (the head-mean of the block's keys). */
  metric: Binding;
  N: number;
  D: number;
  /** Tokens that disappear: the plan has N − r outputs. */
  r: number;
  /** Leading tokens that never merge (1 for a class token). */
  protect: number;
  method: MergeMethod;
  /** PiToMe's energy margin (default 0.5). */
  margin?: number;
  /** u32 [N]: written, the output index of each input token. */
  plan: Binding;
}

/** The largest r a method allows for N tokens of which `protect` never merge. */
export function maxMerges(N: number, protect: number, method: MergeMethod): number {
  const M = Math.max(0, N - protect);
  // ToMe: every A token may merge (|A| = ⌈M/2⌉), as long as there is a B to merge into.
  return method === 'tome' ? (M >= 2 ? Math.ceil(M / 2) : 0) : Math.floor(M / 2);
}

// Temporaries come from gpu.scratch(): the plan kernels' inverse norms, score, partner and order
// (one word per token each), the merge kernel's sources and offsets. Calls share them: dispatches
// in a pass are ordered, and each call's kernels only read what the same call wrote.

const count = (what: string, name: string, v: number) => check(Number.isInteger(v) && v >= 0 && v < 2 ** 31, `${what}: bad ${name} ${v}`);

/**
 * Writes plan[i] = the output token input token i goes into, for merging N tokens into N − r:
 * survivors numbered in their original order, a merged token sharing its partner's number.
 */
export function mergePlan(gpu: Gpu, pass: GPUComputePassEncoder, args: MergePlanArgs): void {
  const { N, D, r, protect, method } = args;
  const margin = args.margin ?? 0.5;
  for (const [name, v] of Object.entries({ N, D, r, protect })) count('mergePlan', name, v);
  check(method === 'tome' || method === 'pitome', `mergePlan: unknown method ${method}`);
  check(N >= 1 && N <= MERGE_MAX_TOKENS, `mergePlan: ${N} tokens; plans cover 1..${MERGE_MAX_TOKENS} (the planning kernels keep one word per token in workgroup memory)`);
  check(D >= 1 && protect <= N, `mergePlan: bad shape, ${N} tokens of ${D} with ${protect} protected`);
  check(r <= maxMerges(N, protect, method), () => `mergePlan: r ${r} is over ${method}'s most, ${maxMerges(N, protect, method)} for ${N} tokens with ${protect} protected`);
  check(Number.isFinite(margin), `mergePlan: bad margin ${margin}`);
  check(bindingBytes(args.metric) >= N * D * 4, `mergePlan: metric must be f32 [${N}][${D}]`);
  check(bindingBytes(args.plan) >= N * 4, `mergePlan: plan must be u32 [${N}]`);

  const M = N - protect;
  const invNorm = gpu.scratch('token merge inverse norms', N * 4);
  const score = gpu.scratch('token merge score', N * 4);
  const partner = gpu.scratch('token merge partner', N * 4);
  const order = gpu.scratch('token merge order', N * 4);
  const subgroups = gpu.features.subgroups;
  const scorePass = (kind: ScoreKind, outputs: Binding[], workgroups: number, candidates: number) => {
    const pipeline = gpu.pipeline(`token-score-${kind}${subgroups ? '-subgroups' : ''}`, () => tokenScoreWgsl(kind, subgroups));
    const params = new Uint32Array([D, protect, candidates, 0]);
    new Float32Array(params.buffer)[3] = margin;
    gpu.dispatch(pass, pipeline, [args.metric, invNorm, ...outputs, gpu.uniform(params)], [workgroups]);
  };
  const rank = (step: number, candidates: number, take: number) =>
    gpu.dispatch(pass, gpu.pipeline('token-rank', tokenRankWgsl), [score, order, gpu.uniform(new Uint32Array([protect, step, candidates, take]))], [1]);

  let stride = 1; // the w-th merging token is order[w * stride]
  if (r > 0) {
    gpu.dispatch(pass, gpu.pipeline('token-norms', tokenNormsWgsl), [args.metric, invNorm, gpu.uniform(new Uint32Array([N, D]))], [Math.ceil(N / MERGE_WORKGROUP)]);
    if (method === 'tome') {
      const [A, B] = [Math.ceil(M / 2), Math.floor(M / 2)];
      scorePass('tome-partner', [score, partner], A, B); // each A token's best B and its similarity
      rank(2, A, r); // order = the r A tokens with the most similar partners
    } else {
      scorePass('energy', [score], M, M);
      rank(1, M, 2 * r); // order = the 2r highest energies
      scorePass('pitome-partner', [order, partner], r, r); // even ranks' best odd rank
      stride = 2;
    }
  }
  gpu.dispatch(pass, gpu.pipeline('token-assign', tokenAssignWgsl), [order, partner, args.plan, gpu.uniform(new Uint32Array([N, r, stride]))], [1]);
}

export interface MergeTokensArgs {
  /** f32 [N][width]: the residual stream. */
  x: Binding;
  /** f32 [N]: how many original patches each token stands for (ones at first). */
  sizes: Binding;
  /** u32 [N]: output index of each token, onto 0..merged-1 (from mergePlan). */
  plan: Binding;
  N: number;
  width: number;
  /** Output tokens: N − r. */
  merged: number;
  /** f32 [merged][width]: size-weighted means. Must not overlap x. */
  out: Binding;
  /** f32 [merged]: summed sizes. */
  outSizes: Binding;
  /** Optional f32 [merged]: log of outSizes, attention()'s keyBias for proportional attention. */
  outLogSizes?: Binding;
}

/** out[j] = Σ_{plan[i]=j} sizes[i]·x[i] / Σ sizes[i]; outSizes[j] = Σ sizes[i]; outLogSizes[j] = log(outSizes[j]). */
export function mergeTokens(gpu: Gpu, pass: GPUComputePassEncoder, args: MergeTokensArgs): void {
  const { N, width, merged } = args;
  for (const [name, v] of Object.entries({ N, width, merged })) count('mergeTokens', name, v);
  check(merged >= 1 && merged <= N && width >= 1, `mergeTokens: ${N} tokens of ${width} into ${merged}`);
  check(merged <= gpu.limits.maxComputeWorkgroupsPerDimension, `mergeTokens: ${merged} outputs is over maxComputeWorkgroupsPerDimension`);
  check(bindingBytes(args.x) >= N * width * 4 && bindingBytes(args.sizes) >= N * 4 && bindingBytes(args.plan) >= N * 4, `mergeTokens: x must be f32 [${N}][${width}], sizes f32 [${N}], plan u32 [${N}]`);
  check(bindingBytes(args.out) >= merged * width * 4 && bindingBytes(args.outSizes) >= merged * 4 && (!args.outLogSizes || bindingBytes(args.outLogSizes) >= merged * 4),
    `mergeTokens: out must be f32 [${merged}][${width}], outSizes and outLogSizes f32 [${merged}]`);
  const bufferOf = (b: Binding) => ('usage' in b ? b : b.buffer);
  check(bufferOf(args.out) !== bufferOf(args.x), 'mergeTokens: out must be a different buffer from x (outputs read other rows of x)');

  const sources = gpu.scratch('token merge sources', N * 4);
  const offsets = gpu.scratch('token merge offsets', (merged + 1) * 4);
  const params = gpu.uniform(new Uint32Array([N, merged]));
  gpu.dispatch(pass, gpu.pipeline('merge-sources', mergeSourcesWgsl), [args.plan, sources, offsets, params], [Math.ceil(Math.max(N, merged + 1) / MERGE_WORKGROUP)]);
  const log = !!args.outLogSizes;
  const outputs = [args.out, args.outSizes, ...(args.outLogSizes ? [args.outLogSizes] : [])];
  gpu.dispatch(pass, gpu.pipeline(`merge-tokens${log ? '-log' : ''}`, () => mergeTokensWgsl(log)),
    [args.x, args.sizes, sources, offsets, ...outputs, gpu.uniform(new Uint32Array([width, merged]))], [Math.ceil(width / MERGE_WORKGROUP), merged]);
}
