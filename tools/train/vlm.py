"""The vision-language model, LLaVA-style: a CLIP-like ViT (class token, 8-px patches of a 96-px
image, pre-norm LayerNorm blocks with GELU MLPs), a two-layer MLP projector, and a small Llama
decoder that reads the 144 projected patch embeddings before the question.

Training asks every question type about each scene at once, plus a description of the scene,
packed into one sequence (packed_batch): the description names each object's colour, shape and
side together, so each shape word is trained right after its colour word (docs/MODELS.md: with it
and the per-patch targets the model learned shapes, which it had not before).

Two auxiliary heads, not exported, train the ViT: the class token learns which shape-colour
pairs the scene holds (as CLIP's class token learns a contrastive task, so that its attention
means something to [CLS]-based pruning), and each patch token the pair that covers it.
"""
import functools
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import lm
import scenes
from gguf import ARRAY, BOOL, FLOAT32, INT32, STRING, UINT32, GGUFWriter
from llama import Llama, LlamaConfig, round_matrices_to_f16

PATCH = 8
VIT_DIM, VIT_LAYERS, VIT_HEADS, VIT_FFN = 128, 4, 4, 512
LN_EPS = 1e-5
MEAN = STD = (0.5, 0.5, 0.5)
LM_CONFIG = LlamaConfig(lm.VOCAB_SIZE, dim=128, layers=2, heads=4, kv_heads=2, ffn=384, context=512, tied_output=True)
STEPS, BATCH = 1600, 16
EVAL_IMAGES, EVAL_SEED = 64, 20261130
REFERENCE_IMAGES = 3
DESCRIPTION_TOKENS = 48  # the longest description is 39 tokens
AUX_HEADS = ("aux", "patch_aux")  # VisionTower's training-only heads


def gelu(x):
    return F.gelu(x, approximate="tanh")  # ggml_gelu is the tanh approximation


class VitBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(VIT_DIM, eps=LN_EPS)
        self.attn_q, self.attn_k, self.attn_v, self.attn_out = (nn.Linear(VIT_DIM, VIT_DIM) for _ in range(4))
        self.ln2 = nn.LayerNorm(VIT_DIM, eps=LN_EPS)
        self.ffn_up = nn.Linear(VIT_DIM, VIT_FFN)
        self.ffn_down = nn.Linear(VIT_FFN, VIT_DIM)

    def forward(self, x):
        b, t, _ = x.shape
        h = self.ln1(x)
        split = lambda y: y.view(b, t, VIT_HEADS, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.attn_q(h)), split(self.attn_k(h)), split(self.attn_v(h))
        scores = (q @ k.transpose(-1, -2)) * (VIT_DIM // VIT_HEADS) ** -0.5
        x = x + self.attn_out((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1))
        return x + self.ffn_down(gelu(self.ffn_up(self.ln2(x))))


class VisionTower(nn.Module):
    def __init__(self):
        super().__init__()
        patches = (scenes.IMAGE_SIZE // PATCH) ** 2
        self.patch_embd = nn.Conv2d(3, VIT_DIM, PATCH, stride=PATCH)
        self.class_embd = nn.Parameter(torch.randn(VIT_DIM) * 0.02)
        self.position_embd = nn.Parameter(torch.randn(patches + 1, VIT_DIM) * 0.02)
        self.pre_ln = nn.LayerNorm(VIT_DIM, eps=LN_EPS)
        self.blocks = nn.ModuleList(VitBlock() for _ in range(VIT_LAYERS))
        self.mm0 = nn.Linear(VIT_DIM, LM_CONFIG.dim)
        self.mm2 = nn.Linear(LM_CONFIG.dim, LM_CONFIG.dim)
        # Auxiliary heads (AUX_HEADS), not exported: pairs present, and each patch's pair or background.
        self.aux = nn.Linear(VIT_DIM, scenes.PAIRS)
        self.patch_aux = nn.Linear(VIT_DIM, scenes.PAIRS + 1)

    def encode(self, pixels):
        """pixels [batch, 3, H, W], normalised -> hidden states [batch, 1 + patches, dim], class token first."""
        x = self.patch_embd(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embd.expand(x.shape[0], 1, -1), x], dim=1) + self.position_embd
        x = self.pre_ln(x)
        for block in self.blocks:
            x = block(x)
        return x

    def project(self, hidden):
        """The LLaVA MLP projector over the patch tokens (the class token is dropped)."""
        return self.mm2(gelu(self.mm0(hidden[:, 1:])))


def normalise(images):
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


class VLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.vision = VisionTower()
        self.lm = Llama(LM_CONFIG)

    def sequence(self, images, prompt_ids):
        """Input embeddings: BOS, the image's patch embeddings, then the prompt's tokens."""
        hidden = self.vision.encode(normalise(images))
        bos = self.lm.token_embd(torch.full((len(images), 1), 1))
        return torch.cat([bos, self.vision.project(hidden), self.lm.token_embd(prompt_ids)], dim=1), hidden


SEGMENT = 28  # tokens per question-and-answer slot: the longest question with its answer and EOS
DESCRIBE_SEGMENT = 60  # the description slot: its prompt, up to four objects (58 tokens at most) and EOS
SLOTS = [SEGMENT] * len(scenes.QUESTION_TYPES) + [DESCRIBE_SEGMENT]
SLOT_KINDS = scenes.QUESTION_TYPES + ["describe"]


def packed_batch(rng, sp, size):
    """Images, each with one question of every type that fits it and a description of the scene,
    packed into one sequence.

    Every question gets a slot after the image, with positions restarting where the image ends
    and a mask that shows it only the image and its own tokens (packed_layout), so each slot sees
    exactly what a single-question prompt sees at inference, and one encoding of the image teaches
    six answers instead of one. The description names every object's colour, shape and side.
    """
    starts = np.cumsum([0] + SLOTS)
    ids = torch.full((size, starts[-1]), sp.eos_id())
    target = torch.full((size, starts[-1]), -100)  # loss on the answers and their EOS only
    asked = torch.zeros((size, len(SLOTS)), dtype=torch.bool)
    images, labels, patch_labels = [], [], []
    for i in range(size):
        image, objects = scenes.make_scene(rng)
        images.append(image)
        labels.append(scenes.presence_labels(objects))
        patch_labels.append(scenes.patch_labels(objects, PATCH))
        qas = [scenes.ask(rng, objects, kind) for kind in scenes.QUESTION_TYPES] + [("describe", scenes.DESCRIBE, scenes.describe(objects))]
        for slot, qa in enumerate(qas):
            if qa is None:
                continue
            question, answer_ids = sp.encode(scenes.prompt_text(qa[1])), sp.encode(" " + qa[2]) + [sp.eos_id()]
            start, tokens = starts[slot], question + answer_ids
            assert len(tokens) <= SLOTS[slot], qa
            ids[i, start:start + len(tokens)] = torch.tensor(tokens)
            target[i, start + len(question) - 1:start + len(tokens) - 1] = torch.tensor(answer_ids)
            asked[i, slot] = True
    return np.stack(images), ids, target, asked, (torch.from_numpy(np.stack(labels)), torch.from_numpy(np.stack(patch_labels)))


@functools.cache  # the same for every step
def packed_layout(prefix):
    """Positions and attention mask for BOS + image (prefix tokens) followed by the SLOTS."""
    positions = torch.cat([torch.arange(prefix)] + [prefix + torch.arange(n) for n in SLOTS])
    slot = torch.cat([torch.full((prefix,), -1)] + [torch.full((n,), s) for s, n in enumerate(SLOTS)])
    causal = torch.ones(len(positions), len(positions), dtype=torch.bool).tril()
    visible = (slot[None, :] == -1) | (slot[None, :] == slot[:, None])
    return positions, causal & visible


def packed_logits(model, images, ids):
    embeddings, hidden = model.sequence(images, ids)
    prefix = embeddings.shape[1] - ids.shape[1]
    positions, mask = packed_layout(prefix)
    return model.lm.logits(model.lm.hidden(embeddings, positions, mask)[:, prefix:]), hidden


@torch.no_grad()
def probe(model, sp, images=48):
    """Exact-answer accuracy per question type (and of descriptions) on fresh scenes, teacher-forced:
    an answer is right when every one of its tokens and its EOS is the argmax, i.e. when greedy
    decoding gives it."""
    images, ids, target, asked, _ = packed_batch(np.random.default_rng(99), sp, images)
    logits, _ = packed_logits(model, images, ids)
    wrong = ((logits.argmax(-1) != target) & (target != -100)).split(SLOTS, dim=1)
    return {kind: round(float((~w.any(-1) & asked[:, s]).sum() / asked[:, s].sum()), 2)
            for s, (kind, w) in enumerate(zip(SLOT_KINDS, wrong))}


def train_vlm(out):
    torch.manual_seed(3)
    rng = np.random.default_rng(21)
    sp = lm.load_tokenizer(out)
    model = VLM()
    lm.log(f"vlm: {sum(p.numel() for p in model.parameters()):,} parameters")
    optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.05, betas=(0.9, 0.95))
    start = time.time()
    for step in range(STEPS):
        images, ids, target, _, (labels, patch_labels) = packed_batch(rng, sp, BATCH)
        for group in optimizer.param_groups:
            group["lr"] = lm.lr_at(step, STEPS, peak=2e-3, warmup=60)
        logits, hidden = packed_logits(model, images, ids)
        answer_loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=-100)
        aux_loss = F.binary_cross_entropy_with_logits(model.vision.aux(hidden[:, 0]), labels) + \
            F.cross_entropy(model.vision.patch_aux(hidden[:, 1:]).flatten(0, 1), patch_labels.flatten())
        loss = answer_loss + 0.5 * aux_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 20 == 0 or step == STEPS - 1:
            lm.log(f"vlm step {step}/{STEPS} answer loss {answer_loss.item():.3f} aux {aux_loss.item():.3f} ({time.time() - start:.0f} s)")
        if step % 200 == 199:
            lm.log(f"vlm step {step + 1} exact answers on fresh scenes: {probe(model, sp)}")
    torch.save({"state": model.state_dict(), "train_seconds": time.time() - start}, os.path.join(out, "vlm.pt"))


def eval_set():
    """The fixed held-out set: images, three questions of different types per image, and the
    description of each image."""
    rng = np.random.default_rng(EVAL_SEED)
    images, questions, descriptions = [], [], []
    while len(images) < EVAL_IMAGES:
        image, objects = scenes.make_scene(rng)
        descriptions.append({"image": len(images), "question": scenes.DESCRIBE, "answer": scenes.describe(objects)})
        kinds = rng.permutation(scenes.QUESTION_TYPES)
        asked = [qa for qa in (scenes.ask(rng, objects, k) for k in kinds) if qa][:3]
        for kind, question, answer in asked:
            questions.append({"image": len(images), "type": kind, "question": question, "answer": answer})
        images.append(image)
    return np.stack(images), questions, descriptions


@torch.no_grad()
def answer(model, sp, image, question, max_tokens=8):
    ids = sp.encode(scenes.prompt_text(question))
    generated = []
    for _ in range(max_tokens):
        embeddings, _ = model.sequence(image[None], torch.tensor([ids + generated]))
        next_id = int(model.lm.logits(model.lm.hidden(embeddings))[0, -1].argmax())
        if next_id == sp.eos_id():
            break
        generated.append(next_id)
    return sp.decode(generated).strip()


def write_mmproj(vision, path):
    w = GGUFWriter()
    patches = (scenes.IMAGE_SIZE // PATCH) ** 2
    w.add("general.architecture", STRING, "clip")
    w.add("general.name", STRING, "tokenwise-vlm-mmproj")
    w.add("general.file_type", UINT32, 0)
    w.add("clip.has_text_encoder", BOOL, False)
    w.add("clip.has_vision_encoder", BOOL, True)
    w.add("clip.has_llava_projector", BOOL, True)
    w.add("clip.projector_type", STRING, "mlp")
    w.add("clip.use_gelu", BOOL, True)
    w.add("clip.vision.image_size", UINT32, scenes.IMAGE_SIZE)
    w.add("clip.vision.patch_size", UINT32, PATCH)
    w.add("clip.vision.embedding_length", UINT32, VIT_DIM)
    w.add("clip.vision.feed_forward_length", UINT32, VIT_FFN)
    w.add("clip.vision.projection_dim", UINT32, LM_CONFIG.dim)
    w.add("clip.vision.attention.head_count", UINT32, VIT_HEADS)
    w.add("clip.vision.attention.layer_norm_epsilon", FLOAT32, LN_EPS)
    w.add("clip.vision.block_count", UINT32, VIT_LAYERS)
    # LLaVA takes the second-to-last layer by default; this model was trained on the last one.
    w.add_array("clip.vision.feature_layer", INT32, [VIT_LAYERS])
    w.add_array("clip.vision.image_mean", FLOAT32, MEAN)
    w.add_array("clip.vision.image_std", FLOAT32, STD)
    t = lambda p: p.detach().numpy()  # noqa: E731
    w.add_tensor("v.class_embd", t(vision.class_embd))
    w.add_tensor("v.patch_embd.weight", t(vision.patch_embd.weight))  # [dim, 3, 8, 8]
    w.add_tensor("v.patch_embd.bias", t(vision.patch_embd.bias))
    w.add_tensor("v.position_embd.weight", t(vision.position_embd)[: patches + 1])
    w.add_tensor("v.pre_ln.weight", t(vision.pre_ln.weight))
    w.add_tensor("v.pre_ln.bias", t(vision.pre_ln.bias))
    for i, block in enumerate(vision.blocks):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out", "ln1", "ln2", "ffn_up", "ffn_down"):
            layer = getattr(block, name)
            w.add_tensor(f"v.blk.{i}.{name}.weight", t(layer.weight))
            w.add_tensor(f"v.blk.{i}.{name}.bias", t(layer.bias))
    for index, layer in ((0, vision.mm0), (2, vision.mm2)):
        w.add_tensor(f"mm.{index}.weight", t(layer.weight))
        w.add_tensor(f"mm.{index}.bias", t(layer.bias))
    w.write(path)


def export_vlm(out, models_dir, reference_dir):
    sp = lm.load_tokenizer(out)
    model = VLM()
    saved = torch.load(os.path.join(out, "vlm.pt"))
    model.load_state_dict(saved["state"])
    model.eval()
    description = "tokenwise VLM language model: BOS, 144 image embeddings from the mmproj, then 'Question: ... Answer:'"
    lm.write_lm_gguf(model.lm, "tokenwise-vlm", sp, os.path.join(out, "vlm.f32.gguf"), description)
    write_mmproj(model.vision, os.path.join(out, "vlm-mmproj.f32.gguf"))

    images, questions, descriptions = eval_set()
    eval_dir = os.path.join(models_dir, "vlm-eval")
    os.makedirs(eval_dir, exist_ok=True)
    images.tofile(os.path.join(eval_dir, "images.rgb"))

    # References are those of the F16 files: round every matrix as export.ts stores it.
    round_matrices_to_f16(model.lm)
    with torch.no_grad():
        for name, p in model.vision.named_parameters():
            if p.dim() >= 2 and not name.startswith("position") and not name.startswith(AUX_HEADS):
                p.copy_(p.half().float())
    correct_by_type = {}
    for q in questions:
        q["pytorch"] = answer(model, sp, images[q["image"]], q["question"])
        hits = correct_by_type.setdefault(q["type"], [0, 0])
        hits[0] += q["pytorch"] == q["answer"]
        hits[1] += 1
    for d in descriptions:
        d["pytorch"] = answer(model, sp, images[d["image"]], d["question"], max_tokens=DESCRIPTION_TOKENS)
    chance = {"color": 1 / 5, "shape": 1 / 3, "count": 1 / 4, "position": 1 / 2, "exists": 1 / 2}
    accuracy = sum(h[0] for h in correct_by_type.values()) / len(questions)
    with open(os.path.join(eval_dir, "questions.json"), "w") as f:
        json.dump({"image_size": scenes.IMAGE_SIZE, "images_file": "images.rgb", "layout": "uint8 RGB, [image][y][x][channel]",
                   "prompt": scenes.prompt_text("{question}"), "questions": questions,
                   "descriptions": descriptions}, f, indent=1)

    with torch.no_grad():
        hidden = model.vision.encode(normalise(images[:REFERENCE_IMAGES]))
        projected = model.vision.project(hidden)
    hidden.numpy().astype("<f4").tofile(os.path.join(reference_dir, "vlm-vision-hidden.f32"))
    projected.numpy().astype("<f4").tofile(os.path.join(reference_dir, "vlm-image-embeddings.f32"))
    with open(os.path.join(reference_dir, "vlm.json"), "w") as f:
        json.dump({"images": list(range(REFERENCE_IMAGES)), "eval_set": "../vlm-eval/questions.json",
                   "hidden_file": "vlm-vision-hidden.f32", "hidden_shape": list(hidden.shape),
                   "embeddings_file": "vlm-image-embeddings.f32", "embeddings_shape": list(projected.shape),
                   "note": "f32 little-endian; hidden = the ViT's last block output (class token first), embeddings = the projector's output over the patch tokens"}, f, indent=1)
    figures = {
        "parameters": sum(p.numel() for n, p in model.named_parameters() if not n.removeprefix("vision.").startswith(AUX_HEADS)),
        "train_seconds": round(saved["train_seconds"]),
        "eval_questions": len(questions),
        "accuracy": accuracy,
        "accuracy_by_type": {k: v[0] / v[1] for k, v in correct_by_type.items()},
        "chance_by_type": chance,
        "chance": sum(chance[q["type"]] for q in questions) / len(questions),
        "descriptions_exact": sum(d["pytorch"] == d["answer"] for d in descriptions) / len(descriptions),
    }
    lm.log("vlm", json.dumps(figures))
    return figures
