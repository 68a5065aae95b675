// A GGUF model that may be split over several files (llama.cpp's gguf-split: the first shard holds
// the metadata, every shard some tensors, split.no / split.count / split.tensors.count say how).
import type { ByteSource } from '../formats/byte-source';
import { GGUFError } from '../formats/gguf';
import { type GGUFFile, readGGUF } from '../formats/gguf-reader';
import { type TensorSource, ggufTensorSource } from '../models/weights';

export interface GGUFModel {
  /** The file with the model's metadata (the first shard). */
  metadata: GGUFFile;
  files: GGUFFile[];
  tensors: TensorSource;
  /** Bytes of tensor data over all files. */
  tensorBytes: number;
}

export async function openGGUFModel(sources: readonly ByteSource[]): Promise<GGUFModel> {
  const files: GGUFFile[] = [];
  for (const source of sources) files.push(await readGGUF(source));
  const count = files[0].getNumber('split.count');
  if (count !== undefined || files.length > 1) {
    if (count !== files.length) {
      throw new GGUFError(`the model is split into ${count ?? 1} file(s) (split.count) but ${files.length} were given`);
    }
    files.forEach((file, i) => {
      const no = file.getNumber('split.no');
      if (no !== i) throw new GGUFError(`shard ${i + 1} of ${files.length} says it is split.no ${no}: shards are missing or out of order`);
    });
    const declared = files[0].getNumber('split.tensors.count');
    const total = files.reduce((sum, f) => sum + f.tensors.length, 0);
    if (declared !== undefined && declared !== total) {
      throw new GGUFError(`the shards hold ${total} tensors, the first says split.tensors.count = ${declared}`);
    }
  }
  const sourceOf = new Map<string, TensorSource>();
  for (const file of files) {
    const tensors = ggufTensorSource(file);
    for (const t of file.tensors) {
      if (sourceOf.has(t.name)) throw new GGUFError(`tensor ${t.name} appears in more than one shard`);
      sourceOf.set(t.name, tensors);
    }
  }
  return {
    metadata: files[0],
    files,
    tensors: { tensor: (name) => sourceOf.get(name)?.tensor(name) },
    tensorBytes: files.reduce((sum, f) => sum + f.tensors.reduce((s, t) => s + (t.nbytes ?? 0), 0), 0),
  };
}
