// Images for vision requests: what a caller gives (a URL or data: URL, a Blob or File, an
// ImageBitmap, raw pixels) turned into uint8 RGB at the vision encoder's square size. This runs in
// the engine, so in its worker: the page only posts the image. Browsers decode with
// createImageBitmap and read the pixels back through an OffscreenCanvas; Node has neither, so there
// only raw pixels work (resized here in plain TypeScript).
import { EngineError } from './errors';

/** Pixels as bytes, row-major: 3 bytes a pixel (RGB) or 4 (RGBA, e.g. an ImageData; alpha is dropped). */
export interface RawImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * An image in a request: a URL (http(s), relative to the page, data: or blob:), a Blob or File, an
 * ImageBitmap, or raw pixels. Only raw pixels work in Node (no image decoder there).
 */
export type ImageInput = string | URL | Blob | ImageBitmap | RawImage;

const canDecode = () => typeof createImageBitmap === 'function' && typeof OffscreenCanvas === 'function';

/** The image as uint8 RGB of size x size (stretched to the square; transparent pixels over white). */
export async function imageToRgb(input: ImageInput, size: number, signal?: AbortSignal): Promise<Uint8Array> {
  if (isRawImage(input)) return rawToRgb(input, size);
  const what = typeof input === 'string' || input instanceof URL ? 'an image URL' : typeof Blob !== 'undefined' && input instanceof Blob ? 'an image Blob' : 'an ImageBitmap';
  if (typeof input !== 'string' && !(input instanceof URL) && !(typeof Blob !== 'undefined' && input instanceof Blob) && !(typeof ImageBitmap !== 'undefined' && input instanceof ImageBitmap)) {
    throw new EngineError('bad-request', 'an image must be a URL, a Blob, an ImageBitmap or raw pixels { width, height, data }');
  }
  if (!canDecode()) {
    throw new EngineError('unsupported', `decoding ${what} needs createImageBitmap and OffscreenCanvas (a browser or its Web Worker); here, give raw pixels { width, height, data: RGB or RGBA bytes }`);
  }
  const source = typeof input === 'string' || input instanceof URL ? await fetchImage(String(input), signal) : input;
  return decodeToRgb(source, size);
}

function isRawImage(input: ImageInput): input is RawImage {
  if (typeof input !== 'object' || input === null || input instanceof URL) return false;
  if (typeof Blob !== 'undefined' && input instanceof Blob) return false;
  if (typeof ImageBitmap !== 'undefined' && input instanceof ImageBitmap) return false;
  return 'data' in input && ArrayBuffer.isView((input as RawImage).data);
}

function rawToRgb(image: RawImage, size: number): Uint8Array {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new EngineError('bad-request', `an image of ${width}x${height} pixels: width and height must be whole numbers of at least 1`);
  }
  const channels = data.length / (width * height);
  if (channels !== 3 && channels !== 4) {
    throw new EngineError('bad-request', `an image of ${width}x${height} pixels needs ${width * height * 3} bytes (RGB) or ${width * height * 4} (RGBA), got ${data.length}`);
  }
  return resizeRgb(data, width, height, channels, size, size);
}

async function fetchImage(url: string, signal?: AbortSignal): Promise<Blob> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if (signal?.aborted) throw new EngineError('aborted', 'the request was aborted while fetching an image');
    throw new EngineError(/^data:/i.test(url) ? 'bad-request' : 'network', `could not fetch the image ${shortUrl(url)}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new EngineError('network', `could not fetch the image ${shortUrl(url)}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  return response.blob();
}

const shortUrl = (url: string) => (url.length > 80 ? `${url.slice(0, 77)}...` : url);

async function decodeToRgb(source: Blob | ImageBitmap, size: number): Promise<Uint8Array> {
  const created: ImageBitmap[] = [];
  try {
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(source, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      if (source !== bitmap) created.push(bitmap);
    } catch (error) {
      const type = source instanceof Blob ? ` (${source.size} bytes${source.type ? `, ${source.type}` : ''})` : '';
      throw new EngineError('bad-request', `the image could not be decoded${type}: ${(error as Error).message}`);
    }
    if (bitmap.width < 1 || bitmap.height < 1) throw new EngineError('bad-request', `the image is empty (${bitmap.width}x${bitmap.height} pixels)`);
    if (bitmap.width !== size || bitmap.height !== size) {
      bitmap = await createImageBitmap(bitmap, { resizeWidth: size, resizeHeight: size, resizeQuality: 'high', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      created.push(bitmap);
    }
    const canvas = new OffscreenCanvas(size, size);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new EngineError('unsupported', 'no 2D context on an OffscreenCanvas to read the image\'s pixels');
    context.fillStyle = '#fff';
    context.fillRect(0, 0, size, size);
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, size, size).data;
    const rgb = new Uint8Array(size * size * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i];
      rgb[j + 1] = rgba[i + 1];
      rgb[j + 2] = rgba[i + 2];
    }
    return rgb;
  } finally {
    for (const b of created) b.close();
  }
}

/**
 * Resizes row-major pixels (3 or 4 channels; alpha dropped) to RGB of outWidth x outHeight with a
 * triangle (bilinear) filter on pixel centres. Shrinking widens the filter to the scale, so every
 * source pixel counts (PIL's BILINEAR does the same); the same size gives the pixels unchanged.
 */
export function resizeRgb(data: ArrayLike<number>, width: number, height: number, channels: number, outWidth: number, outHeight: number): Uint8Array {
  const out = new Uint8Array(outWidth * outHeight * 3);
  if (width === outWidth && height === outHeight) {
    for (let i = 0, j = 0; j < out.length; i += channels, j += 3) {
      out[j] = data[i];
      out[j + 1] = data[i + 1];
      out[j + 2] = data[i + 2];
    }
    return out;
  }
  const xs = filterTaps(width, outWidth);
  const ys = filterTaps(height, outHeight);
  // Horizontal pass into floats [height][outWidth][3], then vertical.
  const rows = new Float32Array(height * outWidth * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outWidth; x++) {
      const { start, weights } = xs[x];
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < weights.length; k++) {
        const i = (y * width + start + k) * channels;
        r += weights[k] * data[i];
        g += weights[k] * data[i + 1];
        b += weights[k] * data[i + 2];
      }
      const o = (y * outWidth + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  for (let y = 0; y < outHeight; y++) {
    const { start, weights } = ys[y];
    for (let x = 0; x < outWidth * 3; x++) {
      let v = 0;
      for (let k = 0; k < weights.length; k++) v += weights[k] * rows[(start + k) * outWidth * 3 + x];
      out[y * outWidth * 3 + x] = Math.min(255, Math.max(0, Math.round(v)));
    }
  }
  return out;
}

/** Per output pixel, the first source pixel it reads and the normalised triangle weights. */
function filterTaps(inSize: number, outSize: number): Array<{ start: number; weights: Float64Array }> {
  const scale = inSize / outSize;
  const radius = Math.max(1, scale);
  return Array.from({ length: outSize }, (_, i) => {
    const centre = (i + 0.5) * scale;
    const start = Math.max(0, Math.floor(centre - radius));
    const end = Math.min(inSize, Math.ceil(centre + radius));
    const weights = new Float64Array(Math.max(1, end - start));
    let sum = 0;
    for (let j = start; j < end; j++) sum += weights[j - start] = Math.max(0, 1 - Math.abs(j + 0.5 - centre) / radius);
    if (sum > 0) weights.forEach((w, k) => (weights[k] = w / sum));
    else weights[Math.min(weights.length - 1, Math.max(0, Math.round(centre - 0.5) - start))] = 1;
    return { start, weights };
  });
}

/** A key for an image's pixels: SHA-256 where crypto.subtle exists, else a 53-bit hash. */
export async function imageKey(rgb: Uint8Array): Promise<string> {
  if (globalThis.crypto?.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', rgb as Uint8Array<ArrayBuffer>));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (const byte of rgb) {
    h1 = Math.imul(h1 ^ byte, 2654435761);
    h2 = Math.imul(h2 ^ byte, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return `${rgb.length}:${(4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16)}`;
}
