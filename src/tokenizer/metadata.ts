// Reading tokenizer keys from GGUF metadata given as plain values: a Record (arrays as JS arrays
// or typed arrays, integers as numbers or bigints) or anything with get(key), such as a Map or the
// GGUFFile of src/formats/gguf-reader.

export type MetadataSource = Readonly<Record<string, unknown>> | { get(key: string): unknown };

export class MetadataReader {
  constructor(private readonly source: MetadataSource) {}

  raw(key: string): unknown {
    const s = this.source as { get?: unknown };
    return typeof s.get === 'function' ? (s as { get(key: string): unknown }).get(key) : (this.source as Record<string, unknown>)[key];
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw badType(key, v, 'a string');
    return v;
  }

  /** Any integer type (64-bit ones as bigint) or float, as a number. */
  number(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw badType(key, v, 'a number that fits');
      return Number(v);
    }
    throw badType(key, v, 'a number');
  }

  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw badType(key, v, 'a boolean');
    return v;
  }

  strings(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw badType(key, v, 'an array of strings');
    return v as string[];
  }

  /** A numeric array (JS array, typed array, bigint array) as numbers. */
  numbers(key: string): ArrayLike<number> | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Array.from(v, Number);
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return v as unknown as ArrayLike<number>;
    if (Array.isArray(v) && v.every((x) => typeof x === 'number' || typeof x === 'bigint')) return v.map(Number);
    throw badType(key, v, 'an array of numbers');
  }
}

function badType(key: string, v: unknown, expected: string): Error {
  const what = Array.isArray(v) ? 'an array' : ArrayBuffer.isView(v) ? v.constructor.name : typeof v;
  return new Error(`tokenizer: metadata ${key} is ${what}, expected ${expected}`);
}
