// Turns what a user gives (a URL, the URLs of a sharded GGUF, a File/Blob, bytes) into byte
// sources for the GGUF reader, with download progress, a cache so that a reload does not download
// again, and optional SHA-256 integrity.
import { type ByteSource, blobSource, bytesSource, urlSource } from '../formats/byte-source';
import { EngineError } from '../engine/errors';
import { type CacheChoice, modelStore } from './cache';

export type ModelSource = string | URL | readonly (string | URL)[] | Blob | ArrayBuffer | ArrayBufferView;

export interface DownloadProgress {
  /** Bytes downloaded (or found in the cache) so far, over all files. */
  loaded: number;
  /** Total bytes when the server says; 0 while unknown. */
  total: number;
  /** How many of the files came from the cache. */
  fromCache: number;
  files: number;
}

export interface OpenModelOptions {
  /** Default 'cache-api' (where it exists). 'none' streams the file with Range requests instead. */
  cache?: CacheChoice;
  /** Expected SHA-256 per file: 'sha256-<base64>' (as in Subresource Integrity) or 64 hex digits. */
  integrity?: string | readonly string[];
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

const SHARD = /-(\d{5})-of-(\d{5})\.gguf$/;

/** All shard URLs of a split GGUF, given the URL of any shard (llama.cpp's `-00001-of-00003.gguf`). */
export function shardUrls(url: string): string[] {
  const m = url.match(SHARD);
  if (!m) return [url];
  const count = Number(m[2]);
  if (count < 1 || Number(m[1]) < 1 || Number(m[1]) > count) throw new EngineError('bad-request', `${url}: shard ${m[1]} of ${m[2]} is not a valid shard name`);
  return Array.from({ length: count }, (_, i) => url.replace(SHARD, `-${String(i + 1).padStart(5, '0')}-of-${m[2]}.gguf`));
}

function absolute(url: string | URL): string {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  try {
    return new URL(url, base).href;
  } catch {
    throw new EngineError('bad-request', `not a URL: ${String(url)}`);
  }
}

/** The byte sources of the model's files, in shard order. */
export async function openModelFiles(source: ModelSource, options: OpenModelOptions = {}): Promise<ByteSource[]> {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return [bytesSource(source)];
  if (typeof Blob !== 'undefined' && source instanceof Blob) return [blobSource(source)];
  const given = (Array.isArray(source) ? source : [source as string | URL]).map(absolute);
  if (given.length === 0) throw new EngineError('bad-request', 'no model URL given');
  const urls = given.length === 1 ? shardUrls(given[0]) : given;
  const integrity = options.integrity === undefined ? [] : typeof options.integrity === 'string' ? [options.integrity] : [...options.integrity];
  if (integrity.length > 0 && integrity.length !== urls.length) {
    throw new EngineError('bad-request', `${integrity.length} integrity hashes for ${urls.length} files`);
  }
  const store = modelStore(options.cache ?? 'cache-api');
  const progress: DownloadProgress = { loaded: 0, total: 0, fromCache: 0, files: urls.length };
  const report = () => options.onProgress?.({ ...progress });
  const sources: ByteSource[] = [];
  for (const [i, url] of urls.entries()) {
    const cached = await store?.get(url);
    if (cached) {
      await checkIntegrity(cached, integrity[i], url);
      progress.loaded += cached.size;
      progress.total += cached.size;
      progress.fromCache++;
      report();
      sources.push(blobSource(cached));
      continue;
    }
    if (!store && !integrity[i]) {
      // Nothing to keep the file in: read it lazily with Range requests, tensor by tensor.
      sources.push(await rangeSource(url, options, progress, report));
      continue;
    }
    const blob = await download(url, options, progress, report);
    await checkIntegrity(blob, integrity[i], url);
    await store?.put(url, blob).catch(() => undefined); // a full disk only costs the next reload
    sources.push(blobSource(blob));
  }
  return sources;
}

async function fetchOrFail(url: string, options: OpenModelOptions, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await (options.fetch ?? globalThis.fetch)(url, { ...init, signal: options.signal });
  } catch (error) {
    if (options.signal?.aborted) throw new EngineError('aborted', `download of ${url} aborted`);
    throw new EngineError('network', `could not fetch ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new EngineError('network', `could not fetch ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  return response;
}

async function download(url: string, options: OpenModelOptions, progress: DownloadProgress, report: () => void): Promise<Blob> {
  const response = await fetchOrFail(url, options);
  const length = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(length)) progress.total += length;
  report();
  const parts: Uint8Array[] = [];
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      progress.loaded += value.byteLength;
      report();
    }
  } catch (error) {
    if (options.signal?.aborted) throw new EngineError('aborted', `download of ${url} aborted`);
    throw new EngineError('network', `download of ${url} failed: ${(error as Error).message}`);
  }
  const blob = new Blob(parts as BlobPart[]);
  if (!Number.isFinite(length)) progress.total += blob.size;
  else if (blob.size !== length) throw new EngineError('network', `${url}: the server announced ${length} bytes and sent ${blob.size}`);
  return blob;
}

async function rangeSource(url: string, options: OpenModelOptions, progress: DownloadProgress, report: () => void): Promise<ByteSource> {
  let source: ByteSource;
  try {
    source = await urlSource(url, { fetch: options.fetch, signal: options.signal });
  } catch (error) {
    if (options.signal?.aborted) throw new EngineError('aborted', `download of ${url} aborted`);
    throw new EngineError('network', `could not fetch ${url}: ${(error as Error).message}`);
  }
  progress.total += source.size;
  report();
  return {
    size: source.size,
    read: async (offset, length) => {
      const bytes = await source.read(offset, length);
      progress.loaded = Math.min(progress.total, progress.loaded + length);
      report();
      return bytes;
    },
  };
}

function expectedDigest(integrity: string, url: string): Uint8Array {
  if (/^[0-9a-f]{64}$/i.test(integrity)) return Uint8Array.from(integrity.match(/../g)!, (h) => parseInt(h, 16));
  const m = integrity.match(/^sha256-([A-Za-z0-9+/]{43}=)$/);
  if (!m) throw new EngineError('bad-request', `${url}: integrity must be 'sha256-<base64>' or 64 hex digits, got ${JSON.stringify(integrity)}`);
  return Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0));
}

async function checkIntegrity(blob: Blob, integrity: string | undefined, url: string): Promise<void> {
  if (!integrity) return;
  const want = expectedDigest(integrity, url);
  const got = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  if (got.some((b, i) => b !== want[i])) {
    const hex = (d: Uint8Array) => Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
    throw new EngineError('integrity', `${url}: SHA-256 is ${hex(got)}, expected ${hex(want)}`);
  }
}
