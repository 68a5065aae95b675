// Random access to the bytes of a file that may not be in memory: an ArrayBuffer, a Blob/File
// (Node: `fs.openAsBlob(path)`), or a URL read with HTTP Range requests. Parsers ask for the ranges
// they need, so a multi-gigabyte model is never held twice.

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Exactly `length` bytes from `offset`; rejects if the range is not inside the source. The result
   * may be a view of memory the source keeps: callers must not write to it.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
}

function checkRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`invalid byte range: offset ${offset}, length ${length}`);
  }
  if (offset + length > size) {
    throw new RangeError(`byte range ${offset}..${offset + length} is past the end of the source (${size} bytes)`);
  }
}

/** Bytes already in memory; reads are views, not copies. */
export function bytesSource(data: ArrayBuffer | ArrayBufferView): ByteSource {
  const bytes = data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return {
    size: bytes.byteLength,
    read: async (offset, length) => {
      checkRange(bytes.byteLength, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A Blob or File (a file picked in the browser; `fs.openAsBlob(path)` in Node). */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    read: async (offset, length) => {
      checkRange(blob.size, offset, length);
      const buf = await blob.slice(offset, offset + length).arrayBuffer();
      if (buf.byteLength !== length) throw new Error(`short read from blob: wanted ${length} bytes at ${offset}, got ${buf.byteLength}`);
      return new Uint8Array(buf);
    },
  };
}

export interface UrlSourceOptions {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Bytes asked for by the first request; they are kept and serve the header reads. Default 1 MiB. */
  firstChunk?: number;
  /**
   * When the server ignores Range and sends the whole file, the whole body is read into memory and
   * served from there. Refuse bodies larger than this instead (default: no limit).
   */
  maxFullDownload?: number;
}

function parseContentRange(header: string | null): { start: number; end: number; total: number | undefined } | undefined {
  const m = header?.match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

async function readBody(response: Response, limit: number, url: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new Error(`${url}: the server ignores Range requests and the file (${declared} bytes) is over the ${limit}-byte limit for reading it whole`);
  }
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new Error(`${url}: the server ignores Range requests and the file is over the ${limit}-byte limit for reading it whole`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  return out;
}

/**
 * A file behind a URL, read with HTTP Range requests. The first request learns the size from
 * Content-Range; a server that answers it with 200 (ignoring Range) is read whole, once, instead.
 */
export async function urlSource(url: string, options: UrlSourceOptions = {}): Promise<ByteSource> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const first = Math.max(1, options.firstChunk ?? 1 << 20);
  const get = async (start: number, endInclusive: number) => {
    const init = { headers: { ...options.headers, Range: `bytes=${start}-${endInclusive}` }, signal: options.signal };
    try {
      return await doFetch(url, init);
    } catch (error) {
      // One retry for a dropped connection (a server closing an idle keep-alive socket as it is
      // reused); an abort or a second failure goes to the caller.
      if (options.signal?.aborted || !(error instanceof TypeError)) throw error;
      return doFetch(url, init);
    }
  };

  const response = await get(0, first - 1);
  if (response.status === 416) {
    // Nothing satisfies bytes=0-…: an empty file.
    await response.body?.cancel();
    return bytesSource(new Uint8Array(0));
  }
  if (response.status === 200) {
    return bytesSource(await readBody(response, options.maxFullDownload ?? Number.MAX_SAFE_INTEGER, url));
  }
  if (response.status !== 206) {
    await response.body?.cancel();
    throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  }
  const range = parseContentRange(response.headers.get('content-range'));
  if (!range || range.start !== 0 || range.total === undefined) {
    await response.body?.cancel();
    throw new Error(`${url}: unusable Content-Range in a 206 response: ${response.headers.get('content-range')}`);
  }
  const size = range.total;
  const head = new Uint8Array(await response.arrayBuffer());
  if (head.byteLength !== Math.min(first, size)) {
    throw new Error(`${url}: short read: asked for ${Math.min(first, size)} bytes, got ${head.byteLength}`);
  }

  return {
    size,
    read: async (offset, length) => {
      checkRange(size, offset, length);
      if (offset + length <= head.byteLength) return head.subarray(offset, offset + length);
      if (offset < head.byteLength) {
        // Starts inside the kept first chunk: fetch only the rest.
        const out = new Uint8Array(length);
        out.set(head.subarray(offset));
        out.set(await fetchRange(head.byteLength, offset + length - head.byteLength), head.byteLength - offset);
        return out;
      }
      return fetchRange(offset, length);
    },
  };

  async function fetchRange(offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const r = await get(offset, offset + length - 1);
    if (r.status !== 206) {
      await r.body?.cancel();
      throw new Error(`${url}: expected HTTP 206 for bytes ${offset}-${offset + length - 1}, got ${r.status} ${r.statusText}`);
    }
    const got = parseContentRange(r.headers.get('content-range'));
    if (got && got.start !== offset) {
      await r.body?.cancel();
      throw new Error(`${url}: asked for bytes from ${offset}, the server sent bytes from ${got.start}`);
    }
    const bytes = new Uint8Array(await r.arrayBuffer());
    if (bytes.byteLength !== length) {
      throw new Error(`${url}: short read: asked for ${length} bytes at ${offset}, got ${bytes.byteLength}`);
    }
    return bytes;
  }
}
