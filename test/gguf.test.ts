import { mkdtempSync, openAsBlob, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ByteSource, blobSource, bytesSource, urlSource } from '../src/formats/byte-source';
import { GGUFError, GGUFType, type GGUFValue, gv, plainValue } from '../src/formats/gguf';
import { readGGUF } from '../src/formats/gguf-reader';
import { type GGUFTensorSpec, type GGUFWriteSpec, encodeGGUF, encodeGGUFParts } from '../src/formats/gguf-writer';
import { GGMLType as T, rowBytes } from '../src/formats/ggml-types';
import { dequantize, quantize } from '../src/formats/quantize';
import { rng } from './random';

// ---------------------------------------------------------------------------------------------
// Fixtures

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

function randomF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * 2);
}

/** One metadata entry of every value type, with edge values, plus arrays of each. */
function everyValueType(): [string, GGUFValue][] {
  return [
    ['t.u8', gv.u8(255)],
    ['t.i8', gv.i8(-128)],
    ['t.u16', gv.u16(65535)],
    ['t.i16', gv.i16(-32768)],
    ['t.u32', gv.u32(0xffffffff)],
    ['t.i32', gv.i32(-0x80000000)],
    ['t.f32', gv.f32(Math.fround(-1.2345e-5))],
    ['t.f64', gv.f64(Math.PI)],
    ['t.u64', gv.u64(0xffffffffffffffffn)],
    ['t.i64', gv.i64(-0x8000000000000000n)],
    ['t.bool.true', gv.bool(true)],
    ['t.bool.false', gv.bool(false)],
    ['t.string', gv.str('héllo ▁wörld 🦙 \u0000 end')],
    ['t.string.empty', gv.str('')],
    ['t.arr.u8', gv.array(GGUFType.UINT8, Uint8Array.from([0, 1, 255]))],
    ['t.arr.i8', gv.array(GGUFType.INT8, Int8Array.from([-128, 0, 127]))],
    ['t.arr.u16', gv.array(GGUFType.UINT16, Uint16Array.from([0, 65535]))],
    ['t.arr.i16', gv.array(GGUFType.INT16, Int16Array.from([-32768, 32767]))],
    ['t.arr.u32', gv.u32s([0, 0xffffffff, 7])],
    ['t.arr.i32', gv.i32s([-0x80000000, 0x7fffffff])],
    ['t.arr.f32', gv.f32s([0.5, -Infinity, Infinity, Math.fround(1e-40)])],
    ['t.arr.f64', gv.array(GGUFType.FLOAT64, Float64Array.from([Math.E, -0, Number.MAX_VALUE]))],
    ['t.arr.u64', gv.array(GGUFType.UINT64, BigUint64Array.from([0n, 0xffffffffffffffffn]))],
    ['t.arr.i64', gv.array(GGUFType.INT64, BigInt64Array.from([-0x8000000000000000n, 0x7fffffffffffffffn]))],
    ['t.arr.bool', gv.array(GGUFType.BOOL, [true, false, true])],
    ['t.arr.string', gv.strings(['<s>', '', '▁the', '🦙'])],
    ['t.arr.empty', gv.array(GGUFType.FLOAT32, new Float32Array(0))],
    ['t.arr.nested', gv.array(GGUFType.ARRAY, [
      { itemType: GGUFType.STRING, items: ['a b', 'c'] },
      { itemType: GGUFType.STRING, items: [] },
      { itemType: GGUFType.ARRAY, items: [{ itemType: GGUFType.INT32, items: Int32Array.from([1, -2]) }] },
    ])],
  ];
}

/** A small file with varied tensors: several types, 1-D to 4-D, sizes that need padding. */
function smallSpec(version: 2 | 3 = 3, alignment?: number): GGUFWriteSpec {
  const tensors: GGUFTensorSpec[] = [
    { name: 'a.f32', dims: [5, 3], type: T.F32, data: randomBytes(5 * 3 * 4, 1) },
    { name: 'b.f16', dims: [7], type: T.F16, data: randomBytes(7 * 2, 2) },
    { name: 'c.q8_0', dims: [64, 2], type: T.Q8_0, data: randomBytes(rowBytes(T.Q8_0, 64) * 2, 3) },
    { name: 'd.4d', dims: [2, 3, 1, 2], type: T.F32, data: randomBytes(2 * 3 * 2 * 4, 4) },
  ];
  return {
    version, alignment,
    metadata: [['general.architecture', gv.str('test')], ...everyValueType()],
    tensors,
  };
}

function expectGGUFError(p: Promise<unknown>, pattern?: RegExp) {
  return expect(p).rejects.toSatisfy((e: unknown) => {
    if (!(e instanceof GGUFError)) throw new Error(`expected a GGUFError, got ${String(e)}`);
    if (pattern && !pattern.test(e.message)) throw new Error(`message ${JSON.stringify(e.message)} does not match ${pattern}`);
    return true;
  });
}

/** Little-endian header pieces for hand-made (hostile) files. */
class Raw {
  parts: number[] = [];
  u32(v: number) { for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff); return this; }
  u64(v: bigint | number) { let b = BigInt(v); for (let i = 0; i < 8; i++) { this.parts.push(Number(b & 0xffn)); b >>= 8n; } return this; }
  str(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.parts.push(...b); return this; }
  bytes(n: number) { for (let i = 0; i < n; i++) this.parts.push(0); return this; }
  head(version = 3, tensors: bigint | number = 0, kvs: bigint | number = 0) { return this.u32(0x46554747).u32(version).u64(tensors).u64(kvs); }
  done() { return Uint8Array.from(this.parts); }
}

// ---------------------------------------------------------------------------------------------

describe('GGUF round trip', () => {
  for (const version of [2, 3] as const) {
    it(`v${version}: every metadata value type and tensor bytes come back identical`, async () => {
      const spec = smallSpec(version);
      const bytes = encodeGGUF(spec);
      const file = await readGGUF(bytes);
      expect(file.version).toBe(version);
      expect(file.alignment).toBe(32);
      expect(file.dataOffset % 32).toBe(0);
      const expected = new Map(spec.metadata as [string, GGUFValue][]);
      expect([...file.metadata.keys()]).toEqual([...expected.keys()]);
      for (const [key, value] of expected) expect(file.metadata.get(key), key).toStrictEqual(value);
      expect(file.tensors.map((t) => t.name)).toEqual(spec.tensors!.map((t) => t.name));
      for (const spec_t of spec.tensors!) {
        const info = file.tensor(spec_t.name)!;
        expect(info.dims).toEqual(spec_t.dims);
        expect(info.type).toBe(spec_t.type);
        expect(info.offset % 32).toBe(0);
        expect(await file.readTensor(info)).toEqual((spec_t as { data: Uint8Array }).data);
      }
      // And re-encoding what was read gives the same file, byte for byte.
      const again = encodeGGUF({
        version,
        metadata: file.metadata,
        tensors: await Promise.all(file.tensors.map(async (t) => ({ name: t.name, dims: t.dims, type: t.type, data: await file.readTensor(t) }))),
      });
      expect(again).toEqual(bytes);
    });
  }

  it('plain accessors return values without their types', async () => {
    const file = await readGGUF(encodeGGUF(smallSpec()));
    expect(file.get('t.u32')).toBe(0xffffffff);
    expect(file.get('t.u64')).toBe(0xffffffffffffffffn);
    expect(file.get('t.arr.string')).toEqual(['<s>', '', '▁the', '🦙']);
    expect(file.get('t.arr.nested')).toEqual([['a b', 'c'], [], [Int32Array.from([1, -2])]]);
    expect(file.get('missing')).toBeUndefined();
    expect(file.getString('general.architecture')).toBe('test');
    expect(file.getNumber('t.i16')).toBe(-32768);
    expect(file.getNumber('t.f64')).toBe(Math.PI);
    expect(file.getBool('t.bool.true')).toBe(true);
    expect(file.getArray('t.arr.f32')!.items).toEqual(Float32Array.from([0.5, -Infinity, Infinity, Math.fround(1e-40)]));
    expect(() => file.getNumber('t.u64')).toThrow(/UINT64 18446744073709551615, beyond exact JS numbers/);
    expect(() => file.getNumber('t.string')).toThrow(/STRING, expected a number/);
    expect(() => file.getString('t.u8')).toThrow(/UINT8, expected STRING/);
    expect(plainValue(gv.i64(5))).toBe(5n);
  });

  for (const alignment of [1, 8, 64, 4096]) {
    it(`alignment ${alignment}: written as general.alignment, data and every tensor aligned`, async () => {
      const bytes = encodeGGUF(smallSpec(3, alignment));
      const file = await readGGUF(bytes);
      expect(file.alignment).toBe(alignment);
      expect(file.getNumber('general.alignment')).toBe(alignment === 32 ? undefined : alignment);
      expect(file.dataOffset % alignment).toBe(0);
      for (const t of file.tensors) expect(t.fileOffset % alignment).toBe(0);
      // The file ends with the last tensor padded to the alignment.
      expect(bytes.byteLength % alignment).toBe(0);
      for (const t of smallSpec().tensors!) expect(await file.readTensor(t.name)).toEqual((t as { data: Uint8Array }).data);
    });
  }

  it('an empty file (no metadata, no tensors) round-trips', async () => {
    const file = await readGGUF(encodeGGUF({}));
    expect(file.metadata.size).toBe(0);
    expect(file.tensors).toEqual([]);
  });

  it('encodeGGUFParts streams the same bytes as encodeGGUF', () => {
    const parts = [...encodeGGUFParts(smallSpec())];
    expect(parts.length).toBeGreaterThan(2);
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) { joined.set(p, at); at += p.byteLength; }
    expect(joined).toEqual(encodeGGUF(smallSpec()));
  });

  it('tensor sizes come from the type and dims', async () => {
    const types = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_K, T.Q6_K];
    const tensors: GGUFTensorSpec[] = types.map((type, i) => ({ name: `t${i}`, dims: [256, 3], type, data: randomBytes(rowBytes(type, 256) * 3, i) }));
    const file = await readGGUF(encodeGGUF({ tensors }));
    file.tensors.forEach((t, i) => {
      expect(t.nbytes).toBe(rowBytes(types[i]!, 256) * 3);
      expect(t.elements).toBe(768);
    });
    expect(file.tensor('t3')!.nbytes).toBe(8 * 34 * 3); // Q8_0: 34 bytes per 32 values
    expect(file.tensor('t5')!.nbytes).toBe(144 * 3); // Q4_K: 144 bytes per 256 values
  });
});

describe('GGUF writer', () => {
  for (const [name, type, tol] of [['F32', T.F32, 0], ['F16', T.F16, 1e-3], ['BF16', T.BF16, 1e-2], ['Q8_0', T.Q8_0, 0.02],
    ['Q4_0', T.Q4_0, 0.3], ['Q4_K', T.Q4_K, 0.3], ['Q6_K', T.Q6_K, 0.06]] as const) {
    it(`f32 data is converted to ${name} with quantize.ts and reads back close`, async () => {
      const cols = 512, rows = 3;
      const f32 = randomF32(cols * rows, 42);
      const file = await readGGUF(encodeGGUF({ tensors: [{ name: 'w', dims: [cols, rows], type, f32 }] }));
      const data = await file.readTensor('w');
      expect(data).toEqual(quantize(type, f32, cols));
      const back = dequantize(type, data, cols * rows);
      let worst = 0;
      for (let i = 0; i < f32.length; i++) worst = Math.max(worst, Math.abs(back[i]! - f32[i]!));
      expect(worst).toBeLessThanOrEqual(tol);
    });
  }

  it('refuses bad input with clear errors', () => {
    const f32 = new Float32Array(8);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [8], type: T.F32, data: new Uint8Array(31) }] })).toThrow(/31 bytes given, F32 \[8\] takes 32/);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [3, 3], type: T.F32, f32 }] })).toThrow(/8 values for dims \[3, 3\]/);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [40], type: T.Q8_0, data: new Uint8Array(0) }] })).toThrow(/not a multiple of the Q8_0 block size 32/);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [8], type: T.F32, f32 }, { name: 'x', dims: [8], type: T.F32, f32 }] })).toThrow(/duplicate tensor name/);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [8], type: 9999, f32 }] })).toThrow(/unknown GGML type 9999/);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [256], type: T.Q2_K, f32: new Float32Array(256) }] })).toThrow(/tensor x: converting f32 data: GGML type Q2_K \(10\) is not supported; supported types are F32, F16/);
    expect(() => encodeGGUF({ tensors: [{ name: 'x', dims: [1, 1, 1, 1, 8], type: T.F32, f32 }] })).toThrow(/1 to 4 dims/);
    expect(() => encodeGGUF({ metadata: [['k', gv.u8(256)]] })).toThrow(/256 does not fit in UINT8/);
    expect(() => encodeGGUF({ metadata: [['k', gv.i32(1.5)]] })).toThrow(/does not fit in INT32/);
    expect(() => encodeGGUF({ metadata: [['k', gv.u64(-1)]] })).toThrow(/does not fit in UINT64/);
    expect(() => encodeGGUF({ metadata: [['k', gv.str('a')], ['k', gv.str('b')]] })).toThrow(/duplicate metadata key/);
    expect(() => encodeGGUF({ alignment: 48 })).toThrow(/power of two/);
    expect(() => encodeGGUF({ alignment: 64, metadata: [['general.alignment', gv.u32(32)]] })).toThrow(/disagrees/);
  });

  it('writes a tensor of a type it does not know when given its raw bytes', async () => {
    const file = await readGGUF(encodeGGUF({ tensors: [{ name: 'future', dims: [16], type: 200, data: randomBytes(10, 1) }, { name: 'known', dims: [4], type: T.F32, data: randomBytes(16, 2) }] }));
    const future = file.tensor('future')!;
    expect(future.nbytes).toBeUndefined();
    expect(future.typeName).toBe('type 200');
    expect(file.unknownTypeTensors.map((t) => t.name)).toEqual(['future']);
    await expectGGUFError(file.readTensor(future), /tensor future has unknown GGML type 200, so its size is unknown/);
    // Tensors of known types after it still read fine.
    expect(await file.readTensor('known')).toEqual(randomBytes(16, 2));
  });
});

describe('GGUF byte sources', () => {
  const file = encodeGGUF({
    metadata: [['general.architecture', gv.str('test')], ['big.strings', gv.strings(Array.from({ length: 3000 }, (_, i) => `token-${i}`))]],
    tensors: [
      { name: 'big', dims: [1024, 256], type: T.F32, data: randomBytes(1024 * 256 * 4, 7) },
      { name: 'small', dims: [16], type: T.F32, data: randomBytes(64, 8) },
    ],
  });

  /** Counts what a source was asked for. */
  function counting(src: ByteSource) {
    const reads: [number, number][] = [];
    return { reads, src: { size: src.size, read: (o: number, n: number) => { reads.push([o, n]); return src.read(o, n); } } };
  }

  it('parses the header with small growing reads and reads one tensor at a time', async () => {
    const { reads, src } = counting(bytesSource(file));
    const gguf = await readGGUF(src, { headerChunk: 1024 });
    expect(gguf.getArray('big.strings')!.items).toHaveLength(3000);
    const headerRead = reads.reduce((n, [, len]) => n + len, 0);
    expect(headerRead).toBeLessThan(gguf.dataOffset + 64 * 1024); // nowhere near the 1 MiB tensor
    expect(reads.length).toBeGreaterThan(2); // it had to grow
    reads.length = 0;
    expect(await gguf.readTensor('small')).toEqual(randomBytes(64, 8));
    expect(reads).toEqual([[gguf.tensor('small')!.fileOffset, 64]]);
  });

  it('reads from a Blob and from a file opened with fs.openAsBlob', async () => {
    const fromBlob = await readGGUF(blobSource(new Blob([file])));
    expect(await fromBlob.readTensor('big')).toEqual(randomBytes(1024 * 256 * 4, 7));
    const dir = mkdtempSync(join(tmpdir(), 'gguf-test-'));
    try {
      const path = join(dir, 'm.gguf');
      writeFileSync(path, file);
      const fromFile = await readGGUF(blobSource(await openAsBlob(path)));
      expect(fromFile.getString('general.architecture')).toBe('test');
      expect(await fromFile.readTensor('small')).toEqual(randomBytes(64, 8));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects reads outside the source', async () => {
    await expect(bytesSource(file).read(file.byteLength - 1, 2)).rejects.toThrow(/past the end/);
    await expect(blobSource(new Blob([file])).read(-1, 2)).rejects.toThrow(/invalid byte range/);
  });

  describe('over HTTP', () => {
    let server: Server;
    let base = '';
    const served: { path: string; range: string | undefined; status: number; bytes: number }[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        const range = req.headers.range;
        const send = (status: number, body: Uint8Array, headers: Record<string, string> = {}) => {
          served.push({ path: req.url!, range, status, bytes: body.byteLength });
          res.writeHead(status, { 'content-length': String(body.byteLength), ...headers });
          res.end(body);
        };
        if (req.url === '/missing.gguf') return send(404, new Uint8Array(0));
        // Honours Range for the first request only, then sends the whole file.
        if (req.url === '/flaky.gguf' && served.some((s) => s.path === '/flaky.gguf')) return send(200, file);
        if (req.url === '/norange.gguf' || !range) return send(200, file);
        const m = /^bytes=(\d+)-(\d+)$/.exec(range)!;
        const start = Number(m[1]);
        const end = Math.min(Number(m[2]), file.byteLength - 1);
        if (start >= file.byteLength) return send(416, new Uint8Array(0), { 'content-range': `bytes */${file.byteLength}` });
        send(206, file.subarray(start, end + 1), { 'content-range': `bytes ${start}-${end}/${file.byteLength}`, 'accept-ranges': 'bytes' });
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

    it('uses Range requests: the header from the first chunk, then only the tensor asked for', async () => {
      served.length = 0;
      const gguf = await readGGUF(await urlSource(`${base}/range.gguf`, { firstChunk: 16 * 1024 }), { headerChunk: 16 * 1024 });
      // A ~60 KiB header: the first 16 KiB chunk, then the rest in growing reads (none re-fetched),
      // nowhere near the 1 MiB tensor that follows.
      expect(gguf.dataOffset).toBeGreaterThan(50_000);
      expect(served[0]).toMatchObject({ status: 206, range: 'bytes=0-16383', bytes: 16384 });
      expect(served.length).toBeLessThanOrEqual(4);
      expect(served.reduce((n, s) => n + s.bytes, 0)).toBeLessThan(200_000);
      served.length = 1;
      expect(await gguf.readTensor('small')).toEqual(randomBytes(64, 8));
      expect(await gguf.readTensor('big')).toEqual(randomBytes(1024 * 256 * 4, 7));
      expect(served.slice(1).map((s) => [s.status, s.bytes])).toEqual([[206, 64], [206, 1024 * 256 * 4]]);
    });

    it('falls back to one whole download when the server ignores Range', async () => {
      served.length = 0;
      const gguf = await readGGUF(await urlSource(`${base}/norange.gguf`));
      expect(await gguf.readTensor('small')).toEqual(randomBytes(64, 8));
      // Only this file's requests: a late request of an earlier test must not count here.
      expect(served.filter((s) => s.path === '/norange.gguf')).toEqual([{ path: '/norange.gguf', range: 'bytes=0-1048575', status: 200, bytes: file.byteLength }]);
      await expect(urlSource(`${base}/norange.gguf`, { maxFullDownload: 1000 })).rejects.toThrow(/ignores Range requests.*over the 1000-byte limit/);
    });

    it('reports HTTP errors and a server that stops honouring Range', async () => {
      await expect(urlSource(`${base}/missing.gguf`)).rejects.toThrow(/HTTP 404/);
      const gguf = await readGGUF(await urlSource(`${base}/flaky.gguf`));
      await expect(gguf.readTensor('big')).rejects.toThrow(/expected HTTP 206 for bytes \d+-\d+, got 200/);
    });
  });
});

describe('GGUF hostile and truncated input', () => {
  const valid = encodeGGUF(smallSpec());
  const lastDataEnd = (() => {
    // The end of the last tensor's data (its padding may be cut without losing anything).
    const t = smallSpec().tensors!.at(-1)! as { data: Uint8Array };
    return valid.byteLength - (Math.ceil(t.data.byteLength / 32) * 32 - t.data.byteLength);
  })();

  it('a file cut anywhere before the end of its data fails with a clear GGUFError', async () => {
    const messages = new Set<string>();
    for (let cut = 0; cut < lastDataEnd; cut++) {
      // Small header chunks so that cuts land inside every kind of read.
      const p = readGGUF(valid.subarray(0, cut), { headerChunk: 64 });
      await expectGGUFError(p, /truncated|past the end|only \d+ bytes long|claims|more than the/);
      messages.add(((await p.catch((e: Error) => e)) as Error).message.replace(/\d+/g, 'N'));
    }
    // The padding after the last tensor is not needed.
    for (let cut = lastDataEnd; cut <= valid.byteLength; cut++) {
      const file = await readGGUF(valid.subarray(0, cut));
      expect(file.tensors).toHaveLength(4);
    }
    expect(messages.size).toBeGreaterThan(5);
  });

  it('names bad magic, legacy formats and unsupported versions', async () => {
    await expectGGUFError(readGGUF(new TextEncoder().encode('PK\u0003\u0004 a zip file, not a model')), /bad magic \(bytes 50 4b 03 04/);
    await expectGGUFError(readGGUF(new Raw().u32(0x67676a74).u32(3).bytes(32).done()), /legacy GGJT file/);
    await expectGGUFError(readGGUF(new Raw().head(1).done()), /GGUF v1 is not supported/);
    await expectGGUFError(readGGUF(new Raw().head(4).done()), /unsupported GGUF version 4/);
    await expectGGUFError(readGGUF(new Raw().head(0x03000000).done()), /big-endian GGUF v3/);
    await expectGGUFError(readGGUF(new Uint8Array(0)), /only 0 bytes long/);
  });

  it('rejects counts and lengths that the file cannot hold, before allocating', async () => {
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 0xffffffffffffffffn).done()), /metadata count .* is absurd/);
    await expectGGUFError(readGGUF(new Raw().head(3, 1n << 40n, 0).done()), /claims 0 metadata entries and 1099511627776 tensors/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).u64(1n << 50n).bytes(16).done()), /key of metadata entry 0 at byte 24 claims 1125899906842624 bytes/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).u64(0xfffffffffffffff0n).bytes(16).done()), /length of key of metadata entry 0 at byte 24 is absurd/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).str('k').u32(GGUFType.STRING).u64(1e9).bytes(8).done()), /metadata k at byte \d+ claims 1000000000 bytes/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).str('k').u32(GGUFType.ARRAY).u32(GGUFType.FLOAT32).u64(1e12).bytes(16).done()),
      /metadata k at byte \d+ claims 1000000000000 items of type FLOAT32/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).str('k').u32(GGUFType.ARRAY).u32(GGUFType.STRING).u64(1e6).bytes(64).done()),
      /claims 1000000 items of type STRING/);
  });

  it('rejects unknown value types, deep nesting and duplicates', async () => {
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).str('k').u32(13).bytes(8).done()), /unknown value type 13 for metadata k/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 1).str('k').u32(GGUFType.ARRAY).u32(99).u64(0).done()), /unknown array item type 99 for metadata k/);
    const deep = new Raw().head(3, 0, 1).str('k').u32(GGUFType.ARRAY);
    for (let i = 0; i < 20; i++) deep.u32(GGUFType.ARRAY).u64(1);
    await expectGGUFError(readGGUF(deep.u32(GGUFType.UINT8).u64(0).done()), /nested more than 8 deep/);
    await expectGGUFError(readGGUF(new Raw().head(3, 0, 2).str('k').u32(GGUFType.UINT8).bytes(1).str('k').u32(GGUFType.UINT8).bytes(1).done()), /duplicate metadata key "k"/);
    const twoTensors = new Raw().head(3, 2, 0);
    for (let i = 0; i < 2; i++) twoTensors.str('t').u32(1).u64(4).u32(T.F32).u64(0);
    await expectGGUFError(readGGUF(twoTensors.bytes(64).done()), /duplicate tensor name "t"/);
  });

  it('rejects bad alignment, dims, offsets and sizes', async () => {
    const alignment = (type: GGUFType, value: (r: Raw) => Raw) => readGGUF(value(new Raw().head(3, 0, 1).str('general.alignment').u32(type)).bytes(64).done());
    await expectGGUFError(alignment(GGUFType.UINT32, (r) => r.u32(0)), /general.alignment must be a power of two, got 0/);
    await expectGGUFError(alignment(GGUFType.UINT32, (r) => r.u32(48)), /power of two, got 48/);
    await expectGGUFError(alignment(GGUFType.STRING, (r) => r.str('32')), /power of two, got 32 \(STRING\)/);
    await expectGGUFError(alignment(GGUFType.FLOAT32, (r) => r.u32(0x42000000)), /power of two, got 32 \(FLOAT32\)/);
    const tensor = (dims: (number | bigint)[], type: number, offset: number | bigint, dataBytes = 64) => {
      const r = new Raw().head(3, 1, 0).str('w').u32(dims.length);
      for (const d of dims) r.u64(d);
      return readGGUF(r.u32(type).u64(offset).bytes(dataBytes + 32).done());
    };
    await expectGGUFError(tensor([1, 1, 1, 1, 1], T.F32, 0), /tensor w has 5 dimensions \(at most 4\)/);
    await expectGGUFError(tensor([1n << 62n], T.F32, 0), /dimension 0 of tensor w at byte \d+ is absurd/);
    await expectGGUFError(tensor([1 << 30, 1 << 30], T.F32, 0), /tensor w: element count of dims \[1073741824, 1073741824\] overflows/);
    await expectGGUFError(tensor([16], T.F32, 4), /tensor w: data offset 4 is not a multiple of the alignment 32/);
    await expectGGUFError(tensor([16], T.F32, 64), /truncated or corrupt: tensor w: data at bytes \d+\.\.\d+ is past the end of the file/);
    await expectGGUFError(tensor([1024], T.F32, 0), /past the end of the file/);
    await expectGGUFError(tensor([40], T.Q8_0, 0), /rows of 40 elements are not a multiple of the Q8_0 block size 32/);
    // An unknown type parses (the loader decides), with a clear error when read.
    const file = await tensor([16], 250, 0);
    expect(file.tensor('w')).toMatchObject({ typeName: 'type 250', nbytes: undefined, elements: 16 });
    await expectGGUFError(file.readTensor('w'), /unknown GGML type 250/);
    await expectGGUFError(file.readTensor('nope'), /no tensor named "nope"/);
  });

  it('random corruption of the header gives a GGUFError or a valid parse, never anything else', async () => {
    const r = rng(99);
    const headerEnd = (await readGGUF(valid)).dataOffset;
    let errors = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bad = valid.slice();
      const flips = 1 + Math.floor(r() * 3);
      for (let f = 0; f < flips; f++) bad[Math.floor(r() * headerEnd)] = Math.floor(r() * 256);
      try {
        const file = await readGGUF(bad, { headerChunk: 128 });
        for (const t of file.tensors) if (t.nbytes !== undefined) await file.readTensor(t);
      } catch (e) {
        if (!(e instanceof GGUFError)) throw new Error(`trial ${trial}: ${String(e)}`);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(50);
  });
});
