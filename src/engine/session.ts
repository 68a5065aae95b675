// A conversation's state on the GPU: per-layer KV caches, the page table, activation scratch,
// and the tokens it has seen. Buffers are allocated once and reused every step.
import { type Binding, type Gpu, GpuError } from '../gpu';
import { attentionMass, treeMaskFromParents } from '../kernels/attention';
import { type KvCache, type KvFormat, PAGE, createKvCache, destroyKvCache, identityPageTable, kvMove } from '../kernels/kv-cache';
import { type RepetitionPenalty, type SamplingOptions, sample } from '../kernels/sampling';
import { chainIds, gatherRows, gumbelKeys } from '../kernels/draft-tree';
import { copy } from '../kernels/elementwise';
import { argmax } from '../kernels/softmax';
import { acceptedPath, greedyAccept, speculativeAccept } from '../kernels/speculative';
import { readTop1, top1 } from '../kernels/top1';
import { selectTopK } from '../kernels/select';
import { columnSums } from '../kernels/vision-prune';
import { MAX_TOPK, topk } from '../kernels/topk';
import type { Decoder, DecoderScratch, DeepLayers, LayerAttentionArgs } from '../models/decoder';
import { AbortError } from './generate';
import { CompressedCache, type KvStats } from './kv/compressed-cache';
import { KeySelection } from './kv/key-selection';
import { UnitMemory } from './kv/unit-memory';
import { type KvPolicyOptions, createKvPolicy } from './kv/policy';

/** Draft tokens that a kernel writes on the GPU (Token Recycling), with an optional hook after the verify forward. */
export interface GpuDraft {
  count: number;
  fill(pass: GPUComputePassEncoder, ids: GPUBuffer): void;
  afterVerify?(pass: GPUComputePassEncoder, logits: GPUBuffer, ids: GPUBuffer, rows: number): void;
}

/** The drafter's distributions for speculative sampling: row i is what node i's children were drawn from. */
export interface DraftProbs {
  buffer: GPUBuffer;
  /** Floats from one row to the next (rows are padded to the storage offset alignment). */
  stride: number;
}

/** How Session.recordGreedyChain drafts: layers to skip, whether the feed stays in the cache, where else the drafts go. */
export interface ChainOptions {
  skipLayers?: ReadonlySet<number>;
  keepFeed?: boolean;
  into?: { ids: GPUBuffer; root: number };
}

/** A node after Session.expandTree: its children in draw order and its top probability. */
export interface ExpandedNode {
  /** Children with q = 0 are left out. */
  children: Array<{ token: number; q: number }>;
  /** The node's largest probability under the drafter (at the sampling temperature, before top-k/top-p; greedy: its first child's q). */
  top: number;
}

/** Sampling settings with the seed and step that pick this verify step's uniforms. */
export type TreeSampling = Omit<SamplingOptions, 'seed' | 'step'> & { seed: number; step: number };

/** What the token history holds for an input row that was not a token (an image embedding). */
export const IMAGE_TOKEN = -1;

/**
 * Rows a verify tree or an evaluate() step may have: they need every row's logits (rows × vocab
 * floats, with their sampling rows as large again), while a long prefill step (an image's tokens)
 * needs only its last row's, so the two bounds are kept apart.
 */
export const MAX_TREE_ROWS = 128;

export interface SessionOptions {
  /** KV slots (tokens of context). Default: the model's context length, at most 2048. Ignored with a KV policy. */
  contextLength?: number;
  /** Tokens per prefill step (with a KV policy also the cache's room beyond its budget). Default 64. */
  prefillChunk?: number;
  kvFormat?: KvFormat;
  /**
   * A KV-cache policy (src/engine/kv/policy.ts). An eviction policy's cache holds its budget plus
   * one prefill step, and generation is unbounded; a selection policy keeps the context length
   * and attends to `budget` tokens per step.
   */
  kv?: KvPolicyOptions;
}

export class Session {
  readonly capacity: number;
  readonly scratch: DecoderScratch;
  readonly caches: KvCache[];
  /** The tokens the session has seen, in order; without a KV policy, slot i holds token i. */
  readonly tokens: number[] = [];
  /** The cache under an eviction policy, when the session has one. */
  readonly compressed: CompressedCache | null = null;
  /** Per-step selection of keys (TokenSelect, TidalDecode) or memory units (InfLLM), under a selection policy. */
  readonly selection: KeySelection | UnitMemory | null = null;
  /** u32: where sampling writes the next token id. */
  readonly sampledToken: GPUBuffer;
  private readonly ids: GPUBuffer;
  private readonly positions: GPUBuffer;
  private readonly slots: GPUBuffer;
  private readonly pageTable: GPUBuffer;
  private readonly treeArgmax: GPUBuffer;
  /** Per-step tree data, written each step rather than allocated (buffers made per step slowed long runs). */
  private readonly treeEnd: GPUBuffer;
  private readonly treeParents: GPUBuffer;
  private readonly kvMoves: GPUBuffer;
  /** A verify walk's result: path length, the emitted token, the path, its tokens. */
  private readonly treeResult: GPUBuffer;
  private readonly top1Out: GPUBuffer;
  /** Speculative sampling's buffers, made on first use: the tree rows' distributions and the accept kernel's scratch. */
  private sampling?: { probs: GPUBuffer; rowTokens: GPUBuffer; residual: GPUBuffer; left: GPUBuffer };
  /** Rows for prefillEmbeddings, made on first use. */
  private inputRows?: GPUBuffer;
  /**
   * After FastV or ToDRE pruned image tokens (C7, C3), per level: layers from `fromLayer` on hold
   * `shift` fewer tokens, all of them pruned from tokens [start, end); their slots are the first
   * layers' minus `shift`.
   */
  private deep: { levels: Array<{ fromLayer: number; shift: number }>; start: number; end: number } | null = null;
  /** Pruning's buffers, made on first use: per level its slots, kept rows and their positions; the image's attention mass and scores. */
  private pruning?: { levels: Array<{ slots: GPUBuffer; rows: GPUBuffer; positions: GPUBuffer }>; mass: GPUBuffer; scores: GPUBuffer; count: GPUBuffer };
  /** Draft-tree expansion's buffers, made on first use: Gumbel keys per row, chosen children and their probabilities. */
  private expansion?: { keys: GPUBuffer; children: GPUBuffer; childProbs: GPUBuffer; tops: GPUBuffer };
  /** Chained drafting's buffers (recordGreedyChain), made on first use and grown as needed. */
  private chain?: { feedIds: GPUBuffer; feedPositions: GPUBuffer; drafts: GPUBuffer; positions: GPUBuffer; regions: number };

  constructor(
    private readonly gpu: Gpu,
    readonly model: Decoder,
    options: SessionOptions = {},
  ) {
    const c = model.config;
    let policy;
    try {
      policy = options.kv ? createKvPolicy(options.kv) : null;
    } catch (error) {
      throw new GpuError('bad-argument', (error as Error).message);
    }
    const evicting = policy?.kind === 'evict' ? policy : null;
    const context = evicting ? evicting.budget + (options.prefillChunk ?? 64) : options.contextLength ?? Math.min(c.contextLength, 2048);
    if (!Number.isInteger(context) || context < 1) throw new GpuError('bad-argument', `bad context length ${options.contextLength}`);
    this.capacity = Math.ceil(context / PAGE) * PAGE;
    const chunk = Math.min(options.prefillChunk ?? 64, evicting ? this.capacity - evicting.budget : this.capacity);
    this.pageTable = gpu.upload(identityPageTable(this.capacity), 'page table');
    this.caches = [];
    try {
      for (let l = 0; l < c.layers; l++) {
        this.caches.push(createKvCache(gpu, { capacity: this.capacity, kvHeads: c.kvHeads, headDim: c.headDim, format: options.kvFormat ?? 'f32', pageTable: this.pageTable }));
      }
    } catch (error) {
      this.caches.forEach(destroyKvCache);
      this.pageTable.destroy();
      throw error;
    }
    if (evicting) this.compressed = new CompressedCache(gpu, model, evicting, this.caches, this.capacity);
    if (policy?.kind === 'select') this.selection = new (policy.units ? UnitMemory : KeySelection)(gpu, model, policy, this.capacity, chunk);
    this.scratch = model.createScratch(chunk, MAX_TREE_ROWS);
    this.ids = gpu.buffer(chunk * 4, 'ids');
    this.positions = gpu.buffer(chunk * 4, 'positions');
    this.slots = gpu.buffer(chunk * 4, 'slots');
    this.sampledToken = gpu.buffer(4, 'sampled token');
    this.treeArgmax = gpu.buffer(chunk * 4, 'tree argmax');
    this.treeEnd = gpu.buffer(chunk * 4, 'tree end');
    this.treeParents = gpu.buffer(chunk * 4, 'tree parents');
    this.kvMoves = gpu.buffer(chunk * 8, 'kv moves');
    this.treeResult = gpu.buffer((2 * chunk + 2) * 4, 'verify result');
    this.top1Out = gpu.buffer(8, 'top-1 and its probability');
  }

  /** The model's layers. */
  get layers(): number {
    return this.model.config.layers;
  }

  /** The model's width: floats per input row. */
  get hidden(): number {
    return this.model.config.hidden;
  }

  /** Tokens one prefill step can take. */
  get stepTokens(): number {
    return this.scratch.maxTokens;
  }

  /** Nodes a token tree can have, and tokens one evaluate() step takes: rows with logits. */
  get treeRows(): number {
    return this.scratch.logitRows;
  }

  /** KV slots in use (without a KV policy, the tokens seen). */
  get length(): number {
    return this.compressed ? this.compressed.used : this.tokens.length;
  }

  /** Whether the cache evicts to make room (a KV policy), so generation is not bounded by its size. */
  get canEvict(): boolean {
    return this.compressed !== null;
  }

  /** The KV policy's stats (a selection policy reads its latest selection back). */
  async kvStats(): Promise<KvStats | undefined> {
    return this.compressed?.stats() ?? this.selection?.stats(this.tokens.length);
  }

  /**
   * How many leading tokens of `ids` can stay cached (at most all but the last, which must run to
   * give logits). A compressed cache no longer holds every token it saw, so it keeps all of them
   * (the prompt continues the conversation) or none.
   */
  reusablePrefix(ids: readonly number[]): number {
    let common = 0;
    while (common < ids.length && common < this.tokens.length && this.tokens[common] === ids[common]) common++;
    return this.rollbackLimit(Math.min(common, ids.length - 1));
  }

  /**
   * The longest prefix of at most `length` tokens that truncate() can keep: a compressed cache
   * keeps everything or nothing, a step FastV pruned is kept whole or dropped.
   */
  rollbackLimit(length: number): number {
    if (!this.canRollBack) return length >= this.tokens.length ? this.tokens.length : 0;
    if (this.deep && length > this.deep.start && length < this.deep.end) return this.deep.start;
    return length;
  }

  /**
   * Whether truncate() may keep part of the history. An evicting cache no longer holds it; InfLLM's
   * memory units were summarised by attention from tokens a rollback would forget.
   */
  get canRollBack(): boolean {
    return !this.compressed && !(this.selection instanceof UnitMemory);
  }

  /** Bytes of KV cache memory this session holds. */
  get kvBytes(): number {
    return this.caches.reduce((sum, cache) => sum + cache.bytes, 0);
  }

  /** Runs the model over `tokens` (appended after what is cached); the last row's logits land in scratch.logits. */
  async prefill(tokens: number[], signal?: AbortSignal): Promise<void> {
    if (!this.compressed && this.length + tokens.length > this.capacity) {
      throw new GpuError('too-large', `${this.length + tokens.length} tokens do not fit the session's context of ${this.capacity}`);
    }
    const chunk = this.scratch.maxTokens;
    for (let start = 0; start < tokens.length; start += chunk) {
      if (signal?.aborted) throw new AbortError();
      await this.step(tokens.slice(start, start + chunk), 'last');
    }
  }

  /**
   * Appends input rows that are not tokens (image embeddings, f32 [rows][hidden]); the history
   * records IMAGE_TOKEN for each. The last row's logits land in scratch.logits.
   */
  async prefillEmbeddings(rows: Float32Array, signal?: AbortSignal): Promise<void> {
    const hidden = this.model.config.hidden;
    const count = rows.length / hidden;
    if (!Number.isInteger(count) || count < 1) throw new GpuError('bad-argument', `${rows.length} values are not rows of ${hidden}`);
    if (!this.compressed && this.length + count > this.capacity) {
      throw new GpuError('too-large', `${this.length + count} tokens do not fit the session's context of ${this.capacity}`);
    }
    const chunk = this.scratch.maxTokens;
    this.inputRows ??= this.gpu.buffer(chunk * hidden * 4, 'input embeddings');
    for (let start = 0; start < count; start += chunk) {
      if (signal?.aborted) throw new AbortError();
      const n = Math.min(chunk, count - start);
      this.gpu.write(this.inputRows, rows.subarray(start * hidden, (start + n) * hidden));
      await this.step(new Array(n).fill(IMAGE_TOKEN), 'last', undefined, { embeddings: this.inputRows });
    }
  }

  /**
   * FastV (C7) and ToDRE's second stage (C3): appends image embeddings `rows` (f32 [n][hidden])
   * and the `text` tokens after them in one step. After decoder layer `layer`, only the `keep`
   * image tokens that the last row attends to most (summed over heads; `queries: 'text'`: every
   * text row, ToDRE's relevance to the task), and the text, go on; after layer `dropAllAfter`, if
   * given, only the text. Layers above never see the others, now or later. The history records
   * IMAGE_TOKEN for every image row. Returns the kept image rows, ascending.
   */
  async prefillPruned(
    rows: Float32Array, text: number[], pruning: { layer: number; keep: number; queries?: 'last' | 'text'; dropAllAfter?: number }, signal?: AbortSignal,
  ): Promise<Uint32Array> {
    const c = this.model.config;
    const n = rows.length / c.hidden;
    const T = n + text.length;
    const { layer, keep, dropAllAfter } = pruning;
    if (!Number.isInteger(n) || n < 1) throw new GpuError('bad-argument', `${rows.length} values are not rows of ${c.hidden}`);
    if (this.compressed || this.selection) throw new GpuError('unsupported', `pruning image tokens on a session with a KV policy (${(this.compressed?.policy ?? this.selection!.policy).name}) is not supported`);
    if (!Number.isInteger(layer) || layer < 0 || layer > c.layers - 2) throw new GpuError('bad-argument', `pruning layer ${layer} must be 0..${c.layers - 2} (a layer with layers above it)`);
    if (!Number.isInteger(keep) || keep < 1 || keep > n) throw new GpuError('bad-argument', `cannot keep ${keep} of ${n} image tokens`);
    if (dropAllAfter !== undefined && (!Number.isInteger(dropAllAfter) || dropAllAfter <= layer || dropAllAfter > c.layers - 2 || text.length === 0)) {
      throw new GpuError('bad-argument', `dropping every image token after layer ${dropAllAfter} needs a layer in ${layer + 1}..${c.layers - 2} and text after the image`);
    }
    const fromLayers = dropAllAfter === undefined ? [layer + 1] : [layer + 1, dropAllAfter + 1];
    if (this.deep && this.deep.levels.map((d) => d.fromLayer).join() !== fromLayers.join()) {
      throw new GpuError('unsupported', `this session already pruned image tokens from layers ${this.deep.levels.map((d) => d.fromLayer).join(', ')}; pruning from layers ${fromLayers.join(', ')} too is not supported`);
    }
    if (T > this.scratch.maxTokens) throw new GpuError('too-large', `an image of ${n} rows and ${text.length} tokens after it exceed one prefill step (${this.scratch.maxTokens}); raise prefillChunk`);
    if (this.length + T > this.capacity) throw new GpuError('too-large', `${this.length + T} tokens do not fit the session's context of ${this.capacity}`);
    if (signal?.aborted) throw new AbortError();
    const b = this.pruningBuffers();
    const first = this.length;
    const choose = (p: GPUComputePassEncoder, args: LayerAttentionArgs & { lse: Binding }) => {
      // The attention the last row (or the text) pays each image token, summed over heads; its top `keep`.
      const queryRange: [number, number] = pruning.queries === 'text' && text.length > 0 ? [n, T] : [T - 1, T];
      attentionMass(this.gpu, p, { ...args, mask: { kind: 'causal' }, mass: b.mass, massStride: first + T, queryRange });
      columnSums(this.gpu, p, { x: b.mass, rows: c.kvHeads, n, stride: first + T, start: first, out: b.scores });
      selectTopK(this.gpu, p, { x: b.scores, rows: 1, n, k: keep, out: b.levels[0].rows, counts: b.count, outStride: keep });
    };
    // Per level, the rows that go on: the first level's `keep` image rows chosen on the GPU
    // (`choose`), then the text; the second level only the text.
    const deep = fromLayers.map((fromLayer, i) => {
      const image = i === 0 ? keep : 0;
      const count = image + text.length;
      this.gpu.write(b.levels[i].rows, Uint32Array.from(text, (_, j) => (i === 0 ? n : keep) + j), image * 4);
      const level = this.deepLevel(i, fromLayer, first, this.deep?.levels[i].shift ?? 0, count);
      return { ...level, prune: { count, rows: b.levels[i].rows, positions: b.levels[i].positions, choose: i === 0 ? choose : undefined } };
    });
    this.inputRows ??= this.gpu.buffer(this.scratch.maxTokens * c.hidden * 4, 'input embeddings');
    this.gpu.write(this.inputRows, rows);
    await this.step([...new Array(n).fill(IMAGE_TOKEN), ...text], 'last', undefined, { embeddings: this.inputRows, rows: n, deep });
    this.deep = { levels: deep.map((d) => ({ fromLayer: d.fromLayer, shift: first - d.queryStart + T - d.prune.count })), start: this.deep?.start ?? first, end: first + T };
    return this.gpu.readU32(b.levels[0].rows, keep);
  }

  private pruningBuffers() {
    if (!this.pruning) {
      const rows = this.scratch.maxTokens;
      const u32 = (label: string) => this.gpu.buffer(rows * 4, label);
      this.pruning = {
        levels: [0, 1].map((i) => ({ slots: u32(`deep slots ${i}`), rows: u32(`kept rows ${i}`), positions: u32(`kept positions ${i}`) })),
        mass: this.gpu.buffer(this.model.config.kvHeads * this.capacity * 4, 'image attention mass'), scores: u32('image scores'), count: this.gpu.buffer(4, 'kept count'),
      };
    }
    return this.pruning;
  }

  /** Deep level i's slots for `count` tokens from slot `first`, its layers lacking `shift` slots. */
  private deepLevel(i: number, fromLayer: number, first: number, shift: number, count: number): DeepLayers {
    const slots = this.pruningBuffers().levels[i].slots;
    this.gpu.write(slots, Uint32Array.from({ length: count }, (_, j) => first - shift + j));
    return { fromLayer, slots, queryStart: first - shift, kvLen: first - shift + count };
  }

  /**
   * One forward over `piece` (at most one scratch's worth), appended after the cached tokens.
   * `input`: rows that are not tokens for the first `rows` of the piece (all by default), and the
   * deep layers' levels when the step prunes (else those that earlier pruning left).
   */
  private async step(piece: number[], logits: 'last' | 'all', after?: (pass: GPUComputePassEncoder) => void, input?: { embeddings: GPUBuffer; rows?: number; deep?: DeepLayers[] }): Promise<void> {
    await this.compressed?.makeRoom(piece.length);
    const first = this.length;
    // RoPE positions count every token seen; slots only those kept (the same without a policy).
    const position = this.tokens.length;
    this.gpu.write(this.ids, Uint32Array.from(piece, (id) => Math.max(0, id)));
    this.gpu.write(this.positions, Uint32Array.from(piece, (_, i) => position + i));
    this.gpu.write(this.slots, Uint32Array.from(piece, (_, i) => first + i));
    const deep = input?.deep ?? this.deep?.levels.map(({ fromLayer, shift }, i) => this.deepLevel(i, fromLayer, first, shift, piece.length));
    await this.gpu.run((pass) => {
      const policy = this.compressed?.stepArgs(pass, piece.length) ?? this.selection?.stepArgs(piece.length, first + piece.length) ?? { mask: { kind: 'causal' } as const };
      this.model.forward(pass, this.scratch, this.caches, {
        count: piece.length, ids: this.ids, positions: this.positions, slots: this.slots,
        queryStart: first, kvLen: first + piece.length, logits, embeddings: input?.embeddings, embeddingRows: input?.rows, deep, ...policy,
      });
      after?.(pass);
    }, logits === 'all' ? 'evaluate' : 'prefill');
    this.compressed?.advance(piece.length);
    this.tokens.push(...piece);
  }

  /**
   * Teacher-forced logits: runs `tokens` through the model (appended to the cache) and returns the
   * logits after each of them (row i predicts token i + 1). For evaluation (perplexity, agreement).
   */
  async evaluate(tokens: number[]): Promise<Float32Array[]> {
    if (!this.compressed && this.length + tokens.length > this.capacity) {
      throw new GpuError('too-large', `${this.length + tokens.length} tokens do not fit the session's context of ${this.capacity}`);
    }
    const vocab = this.model.config.vocabSize;
    const rows: Float32Array[] = [];
    for (let start = 0; start < tokens.length; start += this.treeRows) {
      const piece = tokens.slice(start, start + this.treeRows);
      await this.step(piece, 'all');
      const logits = await this.gpu.readF32(this.scratch.logits, piece.length * vocab);
      for (let i = 0; i < piece.length; i++) rows.push(logits.slice(i * vocab, (i + 1) * vocab));
    }
    return rows;
  }

  /**
   * Speculative verification: logits for every node of a token tree placed after the cached
   * tokens (nodes in DFS preorder, parents[i] = -1 for children of the last cached token). Node i
   * sits at position length + depth(i) and sees the cache plus its own ancestors. The tree's K/V
   * occupy the slots after the cache but are not committed: the cache length is unchanged.
   */
  async evaluateTree(tokens: number[], parents: number[]): Promise<Float32Array[]> {
    const { n } = await this.runTree('evaluateTree', tokens, parents);
    const vocab = this.model.config.vocabSize;
    const logits = await this.gpu.readF32(this.scratch.logits, n * vocab);
    return Array.from({ length: n }, (_, i) => logits.slice(i * vocab, (i + 1) * vocab));
  }

  /**
   * Speculative verification, all on the GPU: runs [root, ...draft] after the cache in one forward
   * (tree attention; node i at position length + depth(i), its K/V in slot length + i), then walks
   * the tree from the root to the path the target keeps and the token it emits after it:
   * - greedy (no `sampling`): while a child holds the target's argmax after the current node (A1
   *   step 4, A2 steps 5 and 8); the bonus is the argmax after the last kept node;
   * - sampling: the lossless acceptance rules (src/shaders/speculative.ts), for point-mass drafts,
   *   or for children drawn from `draft`'s rows without replacement (RSD).
   * `commit`: in the same submission the kept nodes' K/V move to the slots right after the cache,
   * in order, in every layer (K2), and their tokens join the cache; the other nodes are dropped.
   * Without it the cache is unchanged. The tokens come from the CPU, or a GpuDraft writes them
   * into the ids buffer inside the submission (and may read the logits after the forward). Only
   * the path's node indices, its tokens and the emitted token come back: 4 bytes each. `depth`:
   * the tree's, the root at 0.
   */
  async verifyTree(
    tokens: number[] | GpuDraft, parents: number[], options: { sampling?: TreeSampling; draft?: DraftProbs; commit?: boolean } = {},
  ): Promise<{ path: number[]; tokens: number[]; next: number; depth: number }> {
    const { sampling, draft, commit } = options;
    const vocab = this.model.config.vocabSize;
    const buffers = sampling && this.samplingBuffers();
    if (parents.length <= this.treeRows) this.gpu.write(this.treeParents, Int32Array.from(parents));
    const first = this.length;
    // In a chain node i sits at depth i, so every kept node is already in its slot.
    const chain = parents.every((p, i) => p === i - 1);
    // A path has at most depth + 1 nodes: the result holds [L, next, path, the path's tokens].
    const tokensAt = (depth: number) => 2 + depth + 1;
    const { depth } = await this.runTree('verifyTree', tokens, parents, (pass, rows, depth) => {
      const pairs = commit && !chain ? depth : 0;
      if (!Array.isArray(tokens)) tokens.afterVerify?.(pass, this.scratch.logits, this.ids, rows);
      if (buffers) {
        sample(this.gpu, pass, { logits: this.scratch.logits, tokens: buffers.rowTokens, rows, vocab, ...sampling!, probs: buffers.probs });
        speculativeAccept(this.gpu, pass, {
          probs: buffers.probs, tokens: this.ids, parents: this.treeParents, nodes: rows, vocab, seed: sampling!.seed, step: sampling!.step,
          residual: buffers.residual, result: this.treeResult, ...(draft ? { draft: draft.buffer, draftStride: draft.stride, left: buffers.left } : {}),
        });
      } else {
        argmax(this.gpu, pass, { x: this.scratch.logits, out: this.treeArgmax, rows, n: vocab });
        greedyAccept(this.gpu, pass, { targetNext: this.treeArgmax, tokens: this.ids, parents: this.treeParents, nodes: rows, result: this.treeResult });
      }
      acceptedPath(this.gpu, pass, { result: this.treeResult, tokenOffset: tokensAt(depth), tokens: this.ids, moves: this.kvMoves, pairs, first });
      for (const cache of pairs ? this.caches : []) kvMove(this.gpu, pass, { cache, pairs: this.kvMoves, count: pairs });
    });
    const result = await this.gpu.readU32(this.treeResult, tokensAt(depth) + depth + 1);
    const length = result[0];
    const path = Array.from(result.subarray(2, 2 + length));
    const kept = Array.from(result.subarray(tokensAt(depth), tokensAt(depth) + length));
    if (commit) this.tokens.push(...kept);
    return { path, tokens: kept, next: result[1], depth };
  }

  /**
   * One expansion of a draft tree (DySpec, A3): runs the tree (as evaluateTree) and turns each
   * node's logits into the drafter's distribution q (the sampling settings; temperature 1 when
   * `sampling` is absent), then gives each node `m` children with their q: drawn from q without
   * replacement, in draw order (Gumbel-top-k, what RSD's siblings need), or, without sampling, the
   * m likeliest. With sampling each node also gets its top probability at the sampling
   * temperature (A8's confidence). Only those come back. `keep` copies node i's q row to row
   * `keep.rows[i]` of its buffer (-1: not kept), for the verify walk. The cache is unchanged.
   */
  async expandTree(tokens: number[], parents: number[], m: number, sampling: TreeSampling | undefined, keep?: { probs: DraftProbs; rows: number[] }): Promise<ExpandedNode[]> {
    if (!Number.isInteger(m) || m < 1 || m > MAX_TOPK) throw new GpuError('bad-argument', `expandTree: m must be 1..${MAX_TOPK}, got ${m}`);
    const vocab = this.model.config.vocabSize;
    const { probs, rowTokens } = this.samplingBuffers();
    const { keys, children, childProbs, tops } = this.expansionBuffers();
    const { n } = await this.runTree('expandTree', tokens, parents, (pass, rows) => {
      sample(this.gpu, pass, { logits: this.scratch.logits, tokens: rowTokens, rows, vocab, ...(sampling ?? { temperature: 1, seed: 0, step: 0 }), probs });
      if (sampling) {
        gumbelKeys(this.gpu, pass, { q: probs, keys, rows, n: vocab, seed: sampling.seed, step: sampling.step });
        top1(this.gpu, pass, { x: this.scratch.logits, out: tops, rows, n: vocab, temperature: sampling.temperature });
      }
      topk(this.gpu, pass, { x: sampling ? keys : probs, out: children, rows, n: vocab, k: m });
      gatherRows(this.gpu, pass, { x: probs, ids: children, out: childProbs, rows, n: vocab, m });
      keep?.rows.forEach((row, i) => {
        if (row >= 0) copy(this.gpu, pass, { src: probs, dst: keep.probs.buffer, n: vocab, srcOffset: i * vocab, dstOffset: row * keep.probs.stride });
      });
    });
    const [ids, q, top] = await Promise.all([this.gpu.readU32(children, n * m), this.gpu.readF32(childProbs, n * m), sampling ? this.gpu.readU32(tops, 2 * n) : null]);
    const confidence = top && readTop1(top);
    return Array.from({ length: n }, (_, row) => {
      const drawn = Array.from({ length: m }, (_, j) => ({ token: ids[row * m + j], q: q[row * m + j] }));
      return { children: drawn.filter((c) => c.q > 0), top: confidence ? confidence[row].probability : q[row * m] };
    });
  }

  private expansionBuffers() {
    if (!this.expansion) {
      const rows = this.treeRows;
      this.expansion = {
        keys: this.gpu.buffer(rows * this.model.config.vocabSize * 4, 'gumbel keys'),
        children: this.gpu.buffer(rows * MAX_TOPK * 4, 'tree children'),
        childProbs: this.gpu.buffer(rows * MAX_TOPK * 4, 'tree children q'),
        tops: this.gpu.buffer(rows * 8, 'tree top probabilities'),
      };
    }
    return this.expansion;
  }

  private samplingBuffers() {
    if (!this.sampling) {
      const vocab = this.model.config.vocabSize;
      const rows = this.treeRows;
      this.sampling = {
        probs: this.gpu.buffer(rows * vocab * 4, 'tree probs'),
        rowTokens: this.gpu.buffer(rows * 4, 'tree sampled'),
        residual: this.gpu.buffer(vocab * 4, 'accept residual'),
        left: this.gpu.buffer(vocab * 4, 'accept draft left'),
      };
    }
    return this.sampling;
  }

  /** One forward over a token tree after the cache (logits of every node in scratch.logits); returns the node count and the tree's depth. */
  private async runTree(what: string, tokens: number[] | GpuDraft, parents: number[], after?: (pass: GPUComputePassEncoder, rows: number, depth: number) => void): Promise<{ n: number; depth: number }> {
    this.refuseCompressed(what);
    const n = Array.isArray(tokens) ? tokens.length : tokens.count;
    if (n !== parents.length || n < 1 || n > this.treeRows) {
      throw new GpuError('bad-argument', `${what}: ${n} tokens with ${parents.length} parents (1..${this.treeRows} nodes)`);
    }
    if (this.length + n > this.capacity) throw new GpuError('too-large', `a tree of ${n} does not fit after ${this.length} cached tokens (context ${this.capacity})`);
    const { treeEnd, depths } = treeMaskFromParents(parents);
    const depth = Math.max(...depths);
    const first = this.length;
    this.gpu.write(this.treeEnd, treeEnd);
    if (Array.isArray(tokens)) this.gpu.write(this.ids, Uint32Array.from(tokens));
    this.gpu.write(this.positions, depths.map((d) => first + d));
    this.gpu.write(this.slots, Uint32Array.from(parents, (_, i) => first + i));
    await this.gpu.run((pass) => {
      if (!Array.isArray(tokens)) tokens.fill(pass, this.ids);
      this.model.forward(pass, this.scratch, this.caches, {
        count: n, ids: this.ids, positions: this.positions, slots: this.slots,
        queryStart: first, kvLen: first + n, mask: { kind: 'tree', treeEnd: this.treeEnd }, logits: 'all',
      });
      after?.(pass, n, depth);
    }, 'verify tree');
    return { n, depth };
  }

  /**
   * Greedy drafting without round trips (A1 and A9, chained on the GPU): records into `pass` one
   * forward over `feed` placed after the cache, then `count - 1` one-token forwards, each fed the
   * argmax after the one before (with `skipLayers` left out, for self-speculation). The drafts stay
   * on the GPU: draft i is the first u32 of region i of `drafts`, `stride` u32 apart, its
   * probability (at temperature 1) the second. Regions are aligned so that each draft forward binds
   * the previous draft as its input. `keepFeed`: the feed joins the session's tokens (a draft
   * model catching up); otherwise the cache is unchanged and the verify pass overwrites these slots.
   * `into`: also write [root, ...drafts] to a verify step's ids buffer. The drafts' K/V are never
   * committed. Buffers are written now: record into the next submission.
   */
  recordGreedyChain(pass: GPUComputePassEncoder, feed: number[], count: number, options: ChainOptions = {}): { drafts: GPUBuffer; stride: number } {
    this.refuseCompressed('recordGreedyChain');
    if (feed.length < 1 || feed.length > this.scratch.maxTokens || !Number.isInteger(count) || count < 1) {
      throw new GpuError('bad-argument', `recordGreedyChain: a feed of ${feed.length} (1..${this.scratch.maxTokens}) and ${count} drafts`);
    }
    const first = this.length; // the slot of feed[0], and its position: no KV policy here
    const root = first + feed.length - 1;
    if (root + count > this.capacity) throw new GpuError('too-large', `a draft of ${count} does not fit after ${root + 1} tokens (context ${this.capacity})`);
    const stride = this.gpu.limits.minStorageBufferOffsetAlignment / 4;
    const b = this.chainBuffers(count, stride);
    this.gpu.write(b.feedIds, Uint32Array.from(feed));
    this.gpu.write(b.feedPositions, Uint32Array.from(feed, (_, i) => first + i));
    const positions = new Uint32Array(count * stride);
    for (let i = 1; i < count; i++) positions[i * stride] = root + i;
    this.gpu.write(b.positions, positions);
    const region = (buffer: GPUBuffer, i: number, size: number): GPUBufferBinding => ({ buffer, offset: i * stride * 4, size });
    for (let i = 0; i < count; i++) {
      const rows = i === 0 ? feed.length : 1;
      const at = i === 0 ? first : root + i;
      const placed = i === 0 ? b.feedPositions : region(b.positions, i, 4); // positions and slots are equal here
      this.model.forward(pass, this.scratch, this.caches, {
        count: rows, ids: i === 0 ? b.feedIds : region(b.drafts, i - 1, 4), positions: placed, slots: placed,
        queryStart: at, kvLen: at + rows, mask: { kind: 'causal' }, logits: 'last', skipLayers: options.skipLayers,
      });
      top1(this.gpu, pass, { x: this.scratch.logits, out: region(b.drafts, i, 8), rows: 1, n: this.model.config.vocabSize });
    }
    if (options.into) chainIds(this.gpu, pass, { chain: b.drafts, ids: options.into.ids, root: options.into.root, count, stride });
    if (options.keepFeed) this.tokens.push(...feed);
    return { drafts: b.drafts, stride };
  }

  /**
   * recordGreedyChain in a submission of its own, the drafts read back (self-speculation, A9, calls
   * it with `skipLayers` and no `keepFeed`). A8 (Kangaroo's early exit): with `minConfidence`,
   * drafting halts at the first draft whose probability under the drafter is below it (not
   * proposed), so no forward is spent after it; that takes one submission and one round trip per
   * draft. Each draft joins the cache to feed the next and leaves it afterwards.
   */
  async greedyChain(feed: number[], count: number, options: Omit<ChainOptions, 'into'> & { minConfidence?: number } = {}): Promise<number[]> {
    const { minConfidence = 0, ...chainOptions } = options;
    const chain = async (piece: number[], n: number, keepFeed: boolean) => {
      let chained: { drafts: GPUBuffer; stride: number } | undefined;
      await this.gpu.run((pass) => (chained = this.recordGreedyChain(pass, piece, n, { ...chainOptions, keepFeed })), 'greedy chain');
      const words = await this.gpu.readU32(chained!.drafts, n * chained!.stride);
      return readTop1(Uint32Array.from({ length: 2 * n }, (_, i) => words[(i >> 1) * chained!.stride + (i & 1)]));
    };
    if (minConfidence <= 0) return (await chain(feed, count, !!chainOptions.keepFeed)).map((d) => d.token);
    const start = this.tokens.length;
    const drafts: number[] = [];
    for (let piece = feed; drafts.length < count;) {
      const [next] = await chain(piece, 1, true);
      if (next.probability < minConfidence) break;
      drafts.push(next.token);
      piece = [next.token];
    }
    this.truncate(chainOptions.keepFeed ? start + feed.length : start);
    return drafts;
  }

  private chainBuffers(count: number, stride: number) {
    if (!this.chain || this.chain.regions < count) {
      if (this.chain) for (const b of [this.chain.feedIds, this.chain.feedPositions, this.chain.drafts, this.chain.positions]) b.destroy();
      const regions = Math.max(count, 8);
      const feed = this.scratch.maxTokens * 4;
      this.chain = {
        feedIds: this.gpu.buffer(feed, 'chain feed'), feedPositions: this.gpu.buffer(feed, 'chain feed positions'),
        drafts: this.gpu.buffer(regions * stride * 4, 'chained drafts'), positions: this.gpu.buffer(regions * stride * 4, 'chained positions'), regions,
      };
    }
    return this.chain;
  }

  /**
   * Appends `tokens` and returns the greedy choice after the last one with its probability at
   * `temperature` (a drafter's confidence, A8).
   */
  async feedConfident(tokens: number[], temperature = 1): Promise<{ token: number; probability: number }> {
    if (tokens.length > 1) await this.prefill(tokens.slice(0, -1));
    const n = this.model.config.vocabSize;
    await this.step(tokens.slice(-1), 'last', (pass) => top1(this.gpu, pass, { x: this.scratch.logits, out: this.top1Out, rows: 1, n, temperature }));
    return readTop1(await this.gpu.readU32(this.top1Out, 2))[0];
  }

  /** Appends `tokens` to the cache and returns the model's greedy choice after the last one. */
  async feedGreedy(tokens: number[]): Promise<number> {
    return (await this.feedConfident(tokens)).token;
  }

  /**
   * Appends `tokens` and samples the next token from the last one's logits, writing the sampling
   * distribution to `probs` if given (a draft model's q row for speculative sampling). `confidence` is the
   * top token's probability at the sampling temperature, before top-k/top-p (A8's stop rule).
   */
  async feedSampled(tokens: number[], sampling: TreeSampling, probs?: GPUBufferBinding): Promise<{ token: number; confidence: number }> {
    if (tokens.length > 1) await this.prefill(tokens.slice(0, -1));
    const vocab = this.model.config.vocabSize;
    await this.step(tokens.slice(-1), 'last', (pass) => {
      sample(this.gpu, pass, { logits: this.scratch.logits, tokens: this.sampledToken, rows: 1, vocab, ...sampling, probs });
      top1(this.gpu, pass, { x: this.scratch.logits, out: this.top1Out, rows: 1, n: vocab, temperature: sampling.temperature });
    });
    const [token, top] = await Promise.all([this.gpu.readU32(this.sampledToken, 1), this.gpu.readU32(this.top1Out, 2)]);
    return { token: token[0], confidence: readTop1(top)[0].probability };
  }

  /**
   * The next token from the logits the last prefill left (of its last row): sampled (greedy at
   * temperature 0), after the repetition penalty if given. Appends nothing. generate()'s step.
   */
  async sampleNext(sampling: TreeSampling & { penalty?: RepetitionPenalty }): Promise<number> {
    const vocab = this.model.config.vocabSize;
    await this.gpu.run((pass) => sample(this.gpu, pass, { logits: this.scratch.logits, tokens: this.sampledToken, rows: 1, vocab, ...sampling }), 'sample next');
    return (await this.gpu.readU32(this.sampledToken, 1))[0];
  }

  decode(token: number, signal?: AbortSignal): Promise<void> {
    return this.prefill([token], signal);
  }

  /**
   * Forget everything after the first `length` tokens (rollback); their slots are reused. A
   * compressed cache can only keep everything or start again from nothing.
   */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.tokens.length) throw new GpuError('bad-argument', `cannot truncate ${this.tokens.length} tokens to ${length}`);
    if (!this.canRollBack && length !== 0 && length !== this.tokens.length) {
      const what = this.compressed ? 'a compressed KV cache' : `an ${this.selection!.policy.name} memory`;
      throw new GpuError('bad-argument', `${what} cannot roll back to ${length} of ${this.tokens.length} tokens (only to 0)`);
    }
    if (this.deep && length > this.deep.start && length < this.deep.end) {
      throw new GpuError('bad-argument', `cannot truncate to ${length}: tokens ${this.deep.start}..${this.deep.end} were pruned together (FastV, ToDRE); keep all or none of them`);
    }
    if (length < this.tokens.length) {
      this.compressed?.reset();
      this.selection?.reset(length);
    }
    if (this.deep && length <= this.deep.start) this.deep = null;
    this.tokens.length = length;
  }

  private refuseCompressed(what: string): void {
    const policy = this.compressed?.policy ?? this.selection?.policy;
    if (policy) throw new GpuError('unsupported', `${what}: speculative decoding under a KV policy (${policy.name}) is not supported`);
    if (this.deep) throw new GpuError('unsupported', `${what}: speculative decoding after image tokens were pruned inside the model (FastV, ToDRE) is not supported`);
  }

  upload(data: Uint32Array): GPUBuffer {
    return this.gpu.upload(data, 'session data');
  }

  destroy(): void {
    this.compressed?.destroy();
    this.selection?.destroy();
    this.caches.forEach(destroyKvCache);
    this.inputRows?.destroy();
    for (const b of [...(this.pruning ? [this.pruning.mass, this.pruning.scores, this.pruning.count, ...this.pruning.levels.flatMap((l) => Object.values(l))] : []), this.pageTable, this.treeArgmax, this.treeEnd, this.treeParents, this.kvMoves, this.treeResult, this.top1Out, ...Object.values(this.sampling ?? {}), ...Object.values(this.expansion ?? {}), ...(this.chain ? [this.chain.feedIds, this.chain.feedPositions, this.chain.drafts, this.chain.positions] : []), this.ids, this.positions, this.slots, this.sampledToken, ...Object.values(this.scratch).filter((v): v is GPUBuffer => !!v && typeof v === 'object')]) b.destroy();
  }
}
