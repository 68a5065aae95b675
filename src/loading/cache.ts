// Where downloaded model files are kept between page loads: the Cache API (default in browsers) or
// the Origin Private File System. Neither exists in Node, where models are read from disk anyway.

export type CacheChoice = 'cache-api' | 'opfs' | 'none';

export interface ModelStore {
  get(url: string): Promise<Blob | undefined>;
  put(url: string, blob: Blob): Promise<void>;
  delete(url: string): Promise<void>;
}

const CACHE_NAME = 'tokenwise-models';

function cacheApiStore(): ModelStore | undefined {
  if (typeof caches === 'undefined') return undefined;
  return {
    async get(url) {
      const hit = await (await caches.open(CACHE_NAME)).match(url);
      return hit ? hit.blob() : undefined;
    },
    async put(url, blob) {
      await (await caches.open(CACHE_NAME)).put(url, new Response(blob, { headers: { 'content-length': String(blob.size) } }));
    },
    async delete(url) {
      await (await caches.open(CACHE_NAME)).delete(url);
    },
  };
}

/** OPFS file names: the URL's SHA-256, so any URL maps to a valid, fixed-length name. */
async function fileNameFor(url: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(url)));
  return `${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}.bin`;
}

function opfsStore(): ModelStore | undefined {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) return undefined;
  const dir = async () => (await navigator.storage.getDirectory()).getDirectoryHandle(CACHE_NAME, { create: true });
  return {
    async get(url) {
      try {
        return await (await (await dir()).getFileHandle(await fileNameFor(url))).getFile();
      } catch {
        return undefined;
      }
    },
    async put(url, blob) {
      const handle = await (await dir()).getFileHandle(await fileNameFor(url), { create: true });
      const writable = await handle.createWritable();
      await writable.write(blob);
      await writable.close();
    },
    async delete(url) {
      await (await dir()).removeEntry(await fileNameFor(url)).catch(() => undefined);
    },
  };
}

/** The store for a choice, or undefined where this environment has none. */
export function modelStore(choice: CacheChoice): ModelStore | undefined {
  if (choice === 'cache-api') return cacheApiStore();
  if (choice === 'opfs') return opfsStore();
  return undefined;
}
