"""A Llama-architecture decoder in PyTorch, written to compute exactly what llama.cpp computes for
the `llama` GGUF architecture: RMSNorm, RoPE on adjacent pairs (llama.cpp's "normal" mode, so the
exported q/k weights need no permutation), grouped-query attention, SwiGLU.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LlamaConfig:
    vocab_size: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    context: int = 512
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    tied_output: bool = False

    @property
    def head_dim(self):
        return self.dim // self.heads


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(config, positions):
    half = config.head_dim // 2
    inv_freq = config.rope_base ** (-torch.arange(half, dtype=torch.float64) * 2 / config.head_dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):
    # x: [batch, heads, T, head_dim]; pairs (x[2i], x[2i+1]) rotate by angle i.
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated_even = even * cos - odd * sin
    rotated_odd = even * sin + odd * cos
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.attn_norm = RMSNorm(c.dim, c.norm_eps)
        self.attn_q = nn.Linear(c.dim, c.heads * c.head_dim, bias=False)
        self.attn_k = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.attn_v = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.attn_output = nn.Linear(c.heads * c.head_dim, c.dim, bias=False)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.ffn_gate = nn.Linear(c.dim, c.ffn, bias=False)
        self.ffn_up = nn.Linear(c.dim, c.ffn, bias=False)
        self.ffn_down = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        c = self.c
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.attn_q(h).view(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = self.attn_k(h).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.attn_v(h).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = c.heads // c.kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-1, -2)) * c.head_dim ** -0.5
        if mask is None:
            mask = torch.ones(t, t, dtype=torch.bool).tril()
        attn = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + self.attn_output(attn.transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))


class Llama(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token_embd = nn.Embedding(config.vocab_size, config.dim)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.output_norm = RMSNorm(config.dim, config.norm_eps)
        self.output = None if config.tied_output else nn.Linear(config.dim, config.vocab_size, bias=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2 style: residual projections scaled down with depth
            for layer in (block.attn_output, block.ffn_down):
                nn.init.normal_(layer.weight, std=0.02 / (2 * config.layers) ** 0.5)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def hidden(self, embeddings, positions=None, mask=None):
        """Final hidden states (after the output norm) for input embeddings [batch, T, dim]."""
        t = embeddings.shape[1]
        if positions is None:
            positions = torch.arange(t)
        cos, sin = rope_tables(self.config, positions)
        x = embeddings
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        return self.output_norm(x)

    def logits(self, hidden):
        weight = self.token_embd.weight if self.output is None else self.output.weight
        return hidden @ weight.T

    def forward(self, ids):
        return self.logits(self.hidden(self.token_embd(ids)))

    def parameter_count(self):
        return sum(p.numel() for p in self.parameters())

    def gguf_tensors(self):
        """(GGUF name, float32 numpy array) in llama.cpp's naming."""
        yield "token_embd.weight", self.token_embd.weight
        for i, block in enumerate(self.blocks):
            for name in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"):
                yield f"blk.{i}.{name}.weight", getattr(block, name).weight
        yield "output_norm.weight", self.output_norm.weight
        if self.output is not None:
            yield "output.weight", self.output.weight


def round_matrices_to_f16(model):
    """Round every 2-D weight to f16 in place, as the F16 GGUF stores them (norms stay f32), so that
    reference logits are those of the F16 file exactly."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())
