// Safetensors: the reader on round trips and hostile files, sharded checkpoints, config.json
// mapping, and the proof that a Hugging Face checkpoint runs the same model as its GGUF: the same
// seeded weights written as safetensors (HF names, un-permuted Q/K, NeoX RoPE) and as the GGUF
// convert_hf_to_gguf.py would make (Q/K permuted, adjacent-pair RoPE) give the same logits on the
// GPU. The GGUF path is checked against llama.cpp in decoder.test.ts, so this carries over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ByteSource, blobSource, bytesSource } from '../src/formats/byte-source';
import { GGMLType } from '../src/formats/ggml-types';
import { readGGUF } from '../src/formats/gguf-reader';
import { dequantize, quantize } from '../src/formats/quantize';
import {
  SAFETENSORS_MAX_HEADER_BYTES, SafetensorsError, type SafetensorsTensorSpec, encodeSafetensors, readSafetensors, readShardedSafetensors,
} from '../src/formats/safetensors';
import { generate } from '../src/engine/generate';
import { Session } from '../src/engine/session';
import { ModelFormatError } from '../src/models/config';
import { Decoder } from '../src/models/decoder';
import { decoderConfigFromHF, hfTensorSource, tokenizerOptionsFromHFConfig } from '../src/models/huggingface';
import { Tokenizer } from '../src/tokenizer';
import { type HfFixtureOptions, hfFixture, permuteForGGUF } from './oracle/hf-fixture';
import { randomF32, rng, testGpu } from './util';

const enc = new TextEncoder();

/** A file with a hand-written header (text or object) and `dataBytes` zero bytes of data. */
function rawFile(header: unknown, dataBytes = 0, lengthField?: bigint): Uint8Array {
  const json = enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

/** A ByteSource that records the largest read asked of it. */
function watched(bytes: Uint8Array, claimedSize = bytes.byteLength): ByteSource & { largestRead: number } {
  const inner = bytesSource(bytes);
  const src = {
    size: claimedSize,
    largestRead: 0,
    read: (offset: number, length: number) => {
      src.largestRead = Math.max(src.largestRead, length);
      return inner.read(offset, length);
    },
  };
  return src;
}

describe('safetensors reader', () => {
  const f32 = randomF32(6 * 5, 1);
  const specs: SafetensorsTensorSpec[] = [
    { name: 'w.f32', dtype: 'F32', shape: [6, 5], f32 },
    { name: 'w.f16', dtype: 'F16', shape: [6, 5], f32 },
    { name: 'w.bf16', dtype: 'BF16', shape: [3, 2, 5], f32 },
    { name: 'empty', dtype: 'F32', shape: [0, 4], f32: new Float32Array(0) },
    { name: 'ids', dtype: 'I64', shape: [3], data: new Uint8Array(new BigInt64Array([1n, -2n, 3n]).buffer) },
    { name: 'odd.f16', dtype: 'F16', shape: [3], f32: Float32Array.of(1, -2.5, 1e-3) },
  ];

  it('round-trips F32, F16, BF16 (as the GGML types with the same bytes), other dtypes as raw bytes, and metadata', async () => {
    const bytes = encodeSafetensors(specs, { format: 'pt', note: 'ünïcode' });
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    for (const source of [bytes, blobSource(new Blob([bytes]))]) {
      const file = await readSafetensors(source);
      expect(file.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
      expect(file.tensors.map((t) => t.name)).toEqual(specs.map((s) => s.name));
      const get = (name: string) => file.tensor(name)!;
      expect(get('w.f32')).toMatchObject({ dtype: 'F32', shape: [6, 5], ggmlType: GGMLType.F32, elements: 30, nbytes: 120 });
      expect(get('w.f16')).toMatchObject({ ggmlType: GGMLType.F16, nbytes: 60 });
      expect(get('w.bf16')).toMatchObject({ ggmlType: GGMLType.BF16, shape: [3, 2, 5] });
      expect(get('ids')).toMatchObject({ ggmlType: undefined, nbytes: 24 });
      expect(dequantize(GGMLType.F32, await file.readTensor('w.f32'), 30)).toEqual(f32);
      expect(await file.readTensor('w.f16')).toEqual(quantize(GGMLType.F16, f32));
      expect(await file.readTensor('w.bf16')).toEqual(quantize(GGMLType.BF16, f32));
      expect(dequantize(GGMLType.F16, await file.readTensor('odd.f16'), 3)).toEqual(Float32Array.of(1, -2.5, dequantize(GGMLType.F16, quantize(GGMLType.F16, Float32Array.of(1e-3)), 1)[0]!));
      expect([...new BigInt64Array((await file.readTensor('ids')).slice().buffer)]).toEqual([1n, -2n, 3n]);
      expect((await file.readTensor('empty')).byteLength).toBe(0);
      await expect(file.readTensor('nope')).rejects.toThrow(/no tensor named "nope"/);
    }
  });

  it('accepts tensors listed in any order as long as their data is contiguous', async () => {
    const file = await readSafetensors(rawFile({ b: { dtype: 'U8', shape: [2], data_offsets: [3, 5] }, a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] } }, 5));
    expect(file.tensor('b')!.fileOffset).toBe(file.dataOffset + 3);
  });

  const u8 = (begin: number, end: number, shape = [end - begin]) => ({ dtype: 'U8', shape, data_offsets: [begin, end] });
  const hostile: Array<[string, Uint8Array, RegExp]> = [
    ['shorter than the length field', new Uint8Array(5), /only 5 bytes long/],
    ['an absurd header length', rawFile({}, 0, 1n << 62n), /header length 4611686018427387904 is over the 100000000-byte limit/],
    ['a header length just over the limit', rawFile({}, 0, BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1)), /over the 100000000-byte limit/],
    ['a header longer than the file', rawFile({}, 0, 1000n), /truncated: the header claims 1000 bytes, but only 2 follow/],
    ['a header too small for JSON', rawFile('{}', 0, 1n), /too small/],
    ['not JSON', rawFile('{"a": [1, 2'), /not valid JSON/],
    ['a tensor entry that is not an object', rawFile('{"x": 1}'), /tensor "x": entry is not a JSON object/],
    ['a header not starting with {', rawFile('[{"a": 1}]'), /does not start with "\{"/],
    ['a header of invalid UTF-8', (() => { const f = rawFile('{"a":"xx"}'); f[14] = 0xff; f[15] = 0xfe; return f; })(), /not valid UTF-8/],
    ['an unknown dtype', rawFile({ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 1] } }, 1), /unknown dtype "Q4"/],
    ['a missing dtype', rawFile({ a: { shape: [2], data_offsets: [0, 2] } }, 2), /no dtype/],
    ['a negative dimension', rawFile({ a: u8(0, 2, [-2]) }, 2), /shape must be a list of non-negative integers/],
    ['a fractional dimension', rawFile({ a: u8(0, 2, [1.5]) }, 2), /shape must be a list/],
    ['offsets that are not a pair', rawFile({ a: { dtype: 'U8', shape: [2], data_offsets: [0] } }, 2), /data_offsets must be two/],
    ['offsets ending before they begin', rawFile({ a: u8(2, 0, [2]) }, 2), /end before they begin/],
    ['offsets past the end (truncated data)', rawFile({ a: u8(0, 4096) }, 100), /run past the end of the file \(100 bytes of data; truncated\?\)/],
    ['huge offsets', rawFile({ a: u8(2 ** 52, 2 ** 52 + 2, [2]) }, 2), /run past the end/],
    ['a shape that does not match its span', rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 8] } }, 8), /shape \[4\] of F32 takes 16 bytes, but data_offsets \[0, 8\] span 8/],
    ['an overflowing shape', rawFile({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8), /too many elements/],
    ['overlapping tensors', rawFile({ a: u8(0, 6), b: u8(4, 8) }, 8), /tensors "a" and "b" overlap/],
    ['a hole between tensors', rawFile({ a: u8(0, 4), b: u8(6, 8) }, 8), /2 bytes at 4 belong to no tensor \(after "a"\)/],
    ['a hole before the first tensor', rawFile({ a: u8(2, 8) }, 8), /2 bytes at 0 belong to no tensor;/],
    ['bytes after the last tensor', rawFile({ a: u8(0, 4) }, 8), /4 bytes after the last tensor/],
    ['non-string metadata', rawFile({ __metadata__: { n: 1 } }), /__metadata__ "n" is not a string/],
    ['sub-byte data that ends mid-byte', rawFile({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 1] } }, 1), /not a whole number of bytes/],
  ];
  for (const [what, bytes, message] of hostile) {
    it(`rejects ${what} without large reads`, async () => {
      const src = watched(bytes);
      const error = await readSafetensors(src).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SafetensorsError);
      expect((error as Error).message).toMatch(message);
      expect(src.largestRead).toBeLessThanOrEqual(Math.max(8, bytes.byteLength - 8));
    });
  }

  it('rejects a file that claims to be huge from its length field before reading the header', async () => {
    // A source claiming 2^50 bytes whose header length is 2^40: under the file size, over the limit.
    const bytes = rawFile({}, 0, 1n << 40n);
    const src = watched(bytes, 2 ** 50);
    await expect(readSafetensors(src)).rejects.toThrow(/over the 100000000-byte limit/);
    expect(src.largestRead).toBe(8);
  });

  it('survives random corruption of a valid file with a SafetensorsError or a consistent file', async () => {
    const good = encodeSafetensors(specs);
    const r = rng(9);
    for (let trial = 0; trial < 300; trial++) {
      const bad = good.slice(0, trial % 3 === 0 ? Math.floor(r() * good.byteLength) : good.byteLength);
      for (let k = 0; k < 3; k++) if (bad.byteLength) bad[Math.floor(r() * Math.min(bad.byteLength, 200))] = Math.floor(r() * 256);
      try {
        const file = await readSafetensors(bad);
        for (const t of file.tensors) expect((await file.readTensor(t)).byteLength).toBe(t.nbytes);
      } catch (error) {
        expect(error).toBeInstanceOf(SafetensorsError);
      }
    }
  });
});

describe('sharded safetensors', () => {
  const a = randomF32(8, 2);
  const b = randomF32(12, 3);
  const shard1 = encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [8], f32: a }], { format: 'pt' });
  const shard2 = encodeSafetensors([{ name: 'b', dtype: 'BF16', shape: [3, 4], f32: b }, { name: 'unlisted', dtype: 'F32', shape: [1], f32: new Float32Array(1) }]);
  const index = { metadata: { total_size: 56 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } };
  const files: Record<string, Uint8Array> = {
    'model-00001-of-00002.safetensors': shard1,
    'model-00002-of-00002.safetensors': shard2,
    'model.safetensors.index.json': enc.encode(JSON.stringify(index)),
  };
  const opened: string[] = [];
  const open = async (name: string) => {
    opened.push(name);
    if (!files[name]) throw new Error(`ENOENT ${name}`);
    return bytesSource(files[name]);
  };

  it('reads the index, opens each shard once, and reads tensors from the right file', async () => {
    opened.length = 0;
    const weights = await readShardedSafetensors(open);
    expect(opened).toEqual(['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(weights.tensors.map((t) => [t.name, t.file])).toEqual([['a', 'model-00001-of-00002.safetensors'], ['b', 'model-00002-of-00002.safetensors']]);
    expect(weights.tensor('unlisted')).toBeUndefined();
    expect(weights.metadata).toEqual({ format: 'pt' });
    expect(dequantize(GGMLType.F32, await weights.readTensor('a'), 8)).toEqual(a);
    expect(await weights.readTensor(weights.tensor('b')!)).toEqual(quantize(GGMLType.BF16, b));
    // An index given already parsed is not opened.
    opened.length = 0;
    await readShardedSafetensors(open, { index });
    expect(opened).not.toContain('model.safetensors.index.json');
  });

  it('names what is wrong with a bad index or shard', async () => {
    await expect(readShardedSafetensors(open, { index: { weight_map: { a: 'model-00002-of-00002.safetensors' } } })).rejects.toThrow(/puts "a" in model-00002-of-00002.safetensors, which lacks them/);
    await expect(readShardedSafetensors(open, { index: { metadata: {} } })).rejects.toThrow(/no "weight_map" object/);
    await expect(readShardedSafetensors(open, { index: { weight_map: {} } })).rejects.toThrow(/weight_map is empty/);
    for (const file of ['../secrets.safetensors', '/etc/passwd', 'a//b', 'C:\\x', 42]) {
      await expect(readShardedSafetensors(open, { index: { weight_map: { a: file } } })).rejects.toThrow(/not a relative file name/);
    }
    await expect(readShardedSafetensors(open, { index: { weight_map: { a: 'missing.safetensors' } } })).rejects.toThrow(/ENOENT missing.safetensors/);
    files['broken.safetensors'] = shard1.slice(0, shard1.byteLength - 1);
    await expect(readShardedSafetensors(open, { index: { weight_map: { a: 'broken.safetensors' } } })).rejects.toThrow(/^broken.safetensors: tensor "a": data_offsets \[0, 32\] run past the end/);
    files['bad.json'] = enc.encode('{"weight_map": ');
    await expect(readShardedSafetensors(open, { indexFile: 'bad.json' })).rejects.toThrow(/bad.json is not valid JSON/);
    await expect(readShardedSafetensors(open, { indexFile: 'model.safetensors.index.json', maxIndexBytes: 10 })).rejects.toThrow(/over the 10-byte limit/);
  });
});

describe('config.json to DecoderConfig', () => {
  const base = {
    model_type: 'llama', hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8,
    intermediate_size: 8192, rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 131072, vocab_size: 128256,
    tie_word_embeddings: true, hidden_act: 'silu',
    rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  };

  it('maps a Llama 3.2 config, with llama3 RoPE scaling and NeoX RoPE (HF Q/K are not permuted)', () => {
    expect(decoderConfigFromHF(base)).toEqual({
      architecture: 'llama', vocabSize: 128256, hidden: 2048, layers: 16, heads: 32, kvHeads: 8, headDim: 64, ffn: 8192,
      rmsEps: 1e-5, ropeBase: 500000, ropeDim: 64, ropeLayout: 'neox', contextLength: 131072,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
  });

  it('maps qwen2 and qwen3 (explicit head_dim), defaults, linear scaling and transformers 5 rope_parameters', () => {
    const qwen3 = decoderConfigFromHF({ model_type: 'qwen3', hidden_size: 1024, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, intermediate_size: 3072, vocab_size: 151936, rope_theta: 1000000, rms_norm_eps: 1e-6, max_position_embeddings: 40960, rope_scaling: null });
    expect(qwen3).toMatchObject({ architecture: 'qwen3', headDim: 128, ropeDim: 128, ropeBase: 1e6, ropeScaling: { type: 'none' }, ropeLayout: 'neox' });
    const minimal = decoderConfigFromHF({ model_type: 'qwen2', hidden_size: 896, num_hidden_layers: 24, num_attention_heads: 14, intermediate_size: 4864, vocab_size: 151936 });
    expect(minimal).toMatchObject({ kvHeads: 14, headDim: 64, rmsEps: 1e-6, ropeBase: 10000, contextLength: 2048 });
    expect(decoderConfigFromHF({ ...base, rope_scaling: { type: 'linear', factor: 4 } }).ropeScaling).toEqual({ type: 'linear', factor: 4 });
    const v5 = { ...base, rope_theta: undefined, rope_scaling: undefined, rope_parameters: { rope_type: 'default', rope_theta: 250000 } };
    expect(decoderConfigFromHF(v5)).toMatchObject({ ropeBase: 250000, ropeScaling: { type: 'none' } });
  });

  it('names what it cannot run', () => {
    expect(() => decoderConfigFromHF({ ...base, model_type: 'gemma2' })).toThrow(/model_type "gemma2" is not supported; supported: llama, qwen2, qwen3/);
    expect(() => decoderConfigFromHF({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/RoPE scaling "yarn" is not supported/);
    expect(() => decoderConfigFromHF({ ...base, hidden_act: 'gelu' })).toThrow(/hidden_act "gelu"/);
    expect(() => decoderConfigFromHF({ ...base, attention_bias: true })).toThrow(/attention_bias/);
    expect(() => decoderConfigFromHF({ ...base, hidden_size: undefined })).toThrow(/config.json hidden_size is missing/);
    expect(() => decoderConfigFromHF({ ...base, hidden_size: '2048' })).toThrow(/hidden_size is "2048", not a number/);
    expect(() => decoderConfigFromHF({ ...base, num_key_value_heads: 7 })).toThrow(/not a multiple/);
    expect(() => decoderConfigFromHF({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling.low_freq_factor/);
    expect(() => decoderConfigFromHF([])).toThrow(ModelFormatError);
  });

  it('gives the tokenizer the vocabulary size and BOS/EOS ids (the first of several)', () => {
    expect(tokenizerOptionsFromHFConfig({ ...base, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] })).toEqual({ vocabSize: 128256, bosTokenId: 128000, eosTokenId: 128001 });
  });
});

describe('the permutation convert_hf_to_gguf.py applies', () => {
  it('maps NeoX pairs (j, j + headDim/2) of each head to adjacent rows (2j, 2j + 1)', () => {
    const heads = 2, headDim = 8, cols = 3;
    const w = Float32Array.from({ length: heads * headDim * cols }, (_, i) => i);
    const p = permuteForGGUF(w, heads, cols);
    const row = (m: Float32Array, r: number) => [...m.subarray(r * cols, (r + 1) * cols)];
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < headDim / 2; j++) {
        expect(row(p, h * headDim + 2 * j)).toEqual(row(w, h * headDim + j));
        expect(row(p, h * headDim + 2 * j + 1)).toEqual(row(w, h * headDim + j + headDim / 2));
      }
    }
  });
});

const shape = { nEmbd: 256, nHead: 4, nHeadKv: 2, nLayer: 2, nFf: 256, contextLength: 256 };

function range(row: ArrayLike<number>): number {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < row.length; i++) (lo = Math.min(lo, row[i])), (hi = Math.max(hi, row[i]));
  return hi - lo;
}

function prompt(length: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return [1, ...Array.from({ length: length - 1 }, () => 259 + Math.floor(r() * (vocab - 259)))];
}

/** Worst |Δlogit| / logit range over every position of the prompts, and whether every argmax agrees. */
async function compareLogits(a: Decoder, b: Decoder, prompts: number[][]): Promise<{ worst: number; sameArgmax: boolean }> {
  const gpu = await testGpu();
  let worst = 0;
  let sameArgmax = true;
  const argmax = (row: Float32Array) => row.indexOf(Math.max(...row));
  for (const tokens of prompts) {
    const evaluate = async (d: Decoder) => {
      const session = new Session(gpu, d, { contextLength: 64, prefillChunk: 16 });
      try {
        return await session.evaluate(tokens);
      } finally {
        session.destroy();
      }
    };
    const want = await evaluate(a);
    const got = await evaluate(b);
    got.forEach((row, i) => {
      let diff = 0;
      for (let j = 0; j < row.length; j++) diff = Math.max(diff, Math.abs(row[j] - want[i][j]));
      worst = Math.max(worst, diff / range(want[i]));
      if (argmax(row) !== argmax(want[i])) sameArgmax = false;
    });
  }
  return { worst, sameArgmax };
}

async function loadBoth(options: HfFixtureOptions) {
  const gpu = await testGpu();
  const fixture = hfFixture({ ...shape, seed: 21, ...options });
  const gguf = await Decoder.load(gpu, await readGGUF(fixture.gguf));
  const hf = await Decoder.loadSafetensors(gpu, { config: fixture.config, weights: await readSafetensors(fixture.safetensors) });
  return { fixture, gguf, hf };
}

describe('a safetensors checkpoint runs the same model as its GGUF conversion', () => {
  const cases: Array<{ name: string; options: HfFixtureOptions }> = [
    { name: 'llama F32', options: { architecture: 'llama', dtype: 'F32' } },
    { name: 'llama F16', options: { architecture: 'llama', dtype: 'F16' } },
    { name: 'llama BF16 with llama3 RoPE scaling', options: { architecture: 'llama', dtype: 'BF16', ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } } },
    { name: 'qwen2 F32 (QKV bias)', options: { architecture: 'qwen2', dtype: 'F32' } },
    { name: 'qwen2 BF16 (QKV bias)', options: { architecture: 'qwen2', dtype: 'BF16' } },
    { name: 'qwen3 F32 (Q/K norm, tied embeddings)', options: { architecture: 'qwen3', dtype: 'F32', tiedOutput: true } },
    { name: 'qwen3 F16 (Q/K norm, tied embeddings)', options: { architecture: 'qwen3', dtype: 'F16', tiedOutput: true } },
  ];
  const prompts = (vocab: number) => [prompt(1, vocab, 1), prompt(29, vocab, 2)];

  for (const c of cases) {
    it(`${c.name}: teacher-forced logits agree at every position`, async () => {
      const { gguf, hf } = await loadBoth(c.options);
      try {
        expect(hf.config).toEqual({ ...gguf.config, ropeLayout: 'neox', rmsEps: hf.config.rmsEps, ropeScaling: hf.config.ropeScaling });
        expect(Math.fround(hf.config.rmsEps)).toBe(Math.fround(gguf.config.rmsEps));
        const { worst, sameArgmax } = await compareLogits(gguf, hf, prompts(gguf.config.vocabSize));
        console.log(`${c.name}: max |Δlogit| / logit range, safetensors vs GGUF = ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-5);
        expect(sameArgmax).toBe(true);
        if (c.options.dtype !== 'F32') expect(hf.weights.layers[0]!.wq.type).toBe(c.options.dtype === 'F16' ? GGMLType.F16 : GGMLType.BF16);
      } finally {
        gguf.destroy();
        hf.destroy();
      }
    });
  }

  it('is sensitive to the RoPE layout: the HF llama weights with adjacent-pair RoPE give other logits', async () => {
    const gpu = await testGpu();
    const { fixture, gguf, hf } = await loadBoth({ architecture: 'llama' });
    const wrong = await Decoder.fromTensors(gpu, { ...hf.config, ropeLayout: 'normal' }, hfTensorSource(await readSafetensors(fixture.safetensors), fixture.config));
    try {
      const { worst } = await compareLogits(gguf, wrong, [prompt(12, gguf.config.vocabSize, 4)]);
      console.log(`llama safetensors with the wrong ("normal") RoPE layout: max |Δlogit| / range = ${worst.toExponential(2)}`);
      expect(worst).toBeGreaterThan(1e-2);
    } finally {
      gguf.destroy();
      hf.destroy();
      wrong.destroy();
    }
  });
});

describe('loading checkpoints', () => {
  const fixture = hfFixture({ ...shape, seed: 33, architecture: 'qwen2', dtype: 'BF16' });
  let single: Decoder;
  beforeAll(async () => {
    single = await Decoder.loadSafetensors(await testGpu(), { config: fixture.config, weights: await readSafetensors(fixture.safetensors) });
  });
  afterAll(() => single?.destroy());

  it('a sharded checkpoint (two files + index.json) gives the very same logits as one file', async () => {
    const gpu = await testGpu();
    const half = Math.ceil(fixture.tensors.length / 2);
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const files = new Map<string, Uint8Array>([
      [names[0]!, encodeSafetensors(fixture.tensors.slice(0, half), { format: 'pt' })],
      [names[1]!, encodeSafetensors(fixture.tensors.slice(half), { format: 'pt' })],
      ['model.safetensors.index.json', enc.encode(JSON.stringify({
        metadata: { total_size: fixture.safetensors.byteLength },
        weight_map: Object.fromEntries(fixture.tensors.map((t, i) => [t.name, names[i < half ? 0 : 1]])),
      }))],
    ]);
    const weights = await readShardedSafetensors(async (name) => blobSource(new Blob([files.get(name)!.slice()])));
    expect(new Set(weights.tensors.map((t) => t.file)).size).toBe(2);
    const progress: number[] = [];
    const sharded = await Decoder.loadSafetensors(gpu, { config: fixture.config, weights }, (p) => progress.push(p.tensorsDone / p.tensorsTotal));
    try {
      expect(progress.at(-1)).toBe(1);
      const { worst } = await compareLogits(single, sharded, [prompt(20, single.config.vocabSize, 5)]);
      expect(worst).toBe(0);
    } finally {
      sharded.destroy();
    }
  });

  it('names the checkpoint tensor and dtype it cannot use, before allocating anything', async () => {
    const gpu = await testGpu();
    const swap = (name: string, replace: (t: SafetensorsTensorSpec) => SafetensorsTensorSpec) =>
      encodeSafetensors(fixture.tensors.map((t) => (t.name === name ? replace(t) : t)));
    const load = async (bytes: Uint8Array, config: unknown = fixture.config) => Decoder.loadSafetensors(gpu, { config, weights: await readSafetensors(bytes) });

    const i8 = swap('model.layers.1.mlp.up_proj.weight', (t) => ({ name: t.name, dtype: 'I8', shape: t.shape, data: new Uint8Array(t.shape[0]! * t.shape[1]!) }));
    await expect(load(i8)).rejects.toThrow(/tensor model.layers.1.mlp.up_proj.weight has dtype I8 \(supported: F32, F16, BF16\), which tokenwise cannot run/);
    const noBias = encodeSafetensors(fixture.tensors.filter((t) => t.name !== 'model.layers.0.self_attn.k_proj.bias'));
    await expect(load(noBias)).rejects.toThrow(/missing tensor model.layers.0.self_attn.k_proj.bias/);
    const transposed = swap('model.layers.0.self_attn.k_proj.weight', (t) => ({ ...t, shape: [...t.shape].reverse() }) as SafetensorsTensorSpec);
    await expect(load(transposed)).rejects.toThrow(/tensor model.layers.0.self_attn.k_proj.weight has dims \[128, 256\], expected \[256, 128\]/);
    const noHead = encodeSafetensors(fixture.tensors.filter((t) => t.name !== 'lm_head.weight'));
    await expect(load(noHead)).rejects.toThrow(/missing tensor lm_head.weight/);
    await expect(load(fixture.safetensors, { ...fixture.config, model_type: 'mistral' })).rejects.toThrow(/model_type "mistral" is not supported/);
  });

  it('generates end to end with the tokenizer.json beside it, as the GGUF with its own tokenizer does', async () => {
    const gpu = await testGpu();
    const gguf = await readGGUF(fixture.gguf);
    const ggufDecoder = await Decoder.load(gpu, gguf);
    const ggufTokenizer = Tokenizer.fromGGUFMetadata(gguf);
    const tokenizer = Tokenizer.fromTokenizerJson(fixture.tokenizerJson, fixture.tokenizerConfig, tokenizerOptionsFromHFConfig(fixture.config));
    try {
      expect(tokenizer.vocabSize).toBe(single.config.vocabSize);
      expect(tokenizer.bosId).toBe(1);
      expect(tokenizer.eosId).toBe(2);
      for (const text of ['hello world the cat sat on', 'Hello, World! zebra ☃']) {
        expect(tokenizer.encode(text)).toEqual(ggufTokenizer.encode(text));
      }
      const run = async (decoder: Decoder, tok: Tokenizer) => {
        const session = new Session(gpu, decoder, { contextLength: 64, prefillChunk: 16 });
        try {
          return await generate(decoder, tok, session, { prompt: 'hello world the cat sat on', maxTokens: 12, temperature: 0 });
        } finally {
          session.destroy();
        }
      };
      const fromHF = await run(single, tokenizer);
      const fromGGUF = await run(ggufDecoder, ggufTokenizer);
      console.log(`generated from safetensors + tokenizer.json: ${JSON.stringify(fromHF.text)}`);
      expect(fromHF.tokens.length).toBeGreaterThan(0);
      expect(fromHF.tokens).toEqual(fromGGUF.tokens);
      expect(fromHF.text).toBe(fromGGUF.text);
      expect(fromHF.text).toBe(tokenizer.decode(fromHF.tokens));
    } finally {
      ggufDecoder.destroy();
    }
  });
});
