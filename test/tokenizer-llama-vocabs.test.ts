// llama.cpp's own tokenizer test vectors on its own vocabulary files: models/ggml-vocab-*.gguf
// (vocabularies of Llama 1/2, Llama 3, Phi-3, Qwen2, GPT-2, StarCoder, Refact, Command-R) with
// the .inp/.out pairs its test-tokenizer-0 checks. They come from the llama.cpp source that
// node-llama-cpp ships with the oracle (tools/llama-oracle), read straight out of its git bundle.
// The same files then go to llama.cpp itself with our corpus of hard strings.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGGUF } from '../src/formats/gguf-reader';
import { Tokenizer } from '../src/tokenizer';
import { HARD_STRINGS, randomStrings } from './tokenizer-corpus';
import { openTokenizerOracle, oracleUnavailable } from './tokenizer-oracle';

const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
const bundle = fileURLToPath(new URL('../tools/llama-oracle/node_modules/node-llama-cpp/llama/gitRelease.bundle', import.meta.url));

// tokenizer.ggml.model "llama" for llama-spm and phi-3, "gpt2" with their own pre for the others.
const VOCABULARIES = ['llama-spm', 'phi-3', 'llama-bpe', 'qwen2', 'gpt-2', 'starcoder', 'refact', 'command-r'];

describe.skipIf(!linuxX64)('llama.cpp test vectors on its vocabulary files', () => {
  let repo: string;
  const show = (path: string) => execFileSync('git', ['-C', repo, 'show', `HEAD:${path}`], { maxBuffer: 256 << 20 });

  beforeAll(() => {
    const why = oracleUnavailable() ?? (existsSync(bundle) ? undefined : `no llama.cpp source bundle at ${bundle}`);
    if (why) throw new Error(why);
    repo = mkdtempSync(join(tmpdir(), 'tokenwise-llama-src-'));
    execFileSync('git', ['clone', '--quiet', '--no-checkout', bundle, repo]);
  });
  afterAll(() => { if (repo) rmSync(repo, { recursive: true, force: true }); });

  for (const name of VOCABULARIES) {
    it(name, async () => {
      const gguf = show(`models/ggml-vocab-${name}.gguf`);
      const tokenizer = Tokenizer.fromGGUFMetadata(await readGGUF(gguf));
      // test-tokenizer-0's format: inputs separated by "\n__ggml_vocab_test__\n", one line of ids each.
      const inputs = show(`models/ggml-vocab-${name}.gguf.inp`).toString('utf8').split('\n__ggml_vocab_test__\n');
      const expected = show(`models/ggml-vocab-${name}.gguf.out`).toString('utf8').split('\n').slice(0, inputs.length)
        .map((line) => (line.trim() === '' ? [] : line.trim().split(' ').map(Number)));
      expect(inputs.length).toBeGreaterThan(40);
      const diff = inputs
        .map((input, i) => ({ input, ours: tokenizer.encode(input, { addSpecial: false }), expected: expected[i] }))
        .filter((r) => JSON.stringify(r.ours) !== JSON.stringify(r.expected));
      expect(diff).toEqual([]);

      const oracle = await openTokenizerOracle(gguf);
      try {
        const corpus = [...HARD_STRINGS, ...randomStrings(200, 5)];
        for (const parseSpecial of [false, true]) {
          const vsLlamaCpp = corpus
            .map((input) => ({ input, ours: tokenizer.encode(input, { addSpecial: false, parseSpecial }), llamaCpp: oracle.tokenize(input, { special: parseSpecial }) }))
            .filter((r) => JSON.stringify(r.ours) !== JSON.stringify(r.llamaCpp));
          expect(vsLlamaCpp).toEqual([]);
        }
      } finally {
        await oracle.close();
      }
    });
  }
});
