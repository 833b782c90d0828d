"""Plain-PyTorch peers of the r1ts models (no transformers): Llama / Qwen2 and DeepSeek-V3.

Parameter names follow the Hugging Face checkpoints, so `model.safetensors` loads as is.
Semantics match transformers 5.17 (checked by check_golden.py against its golden outputs).
Notes that matter for a re-implementation are marked "SEMANTICS:".

Order, as in the DeepSeek-V3 paper: config -> RMSNorm -> RoPE (+YaRN) -> attention (GQA, MLA)
-> MLP / DeepSeekMoE -> decoder layer -> MTP module -> causal LM + loss -> loading / init.
"""
import json
import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

MTP_LOSS_WEIGHT = 0.3  # lambda for the MTP loss (DeepSeek-V3 uses 0.3 for the first 10T tokens)
SUBNORM_EPS = 1e-6  # SEMANTICS: q_a_layernorm / kv_a_layernorm use eps 1e-6 fixed, not rms_norm_eps


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    model_type: str  # "llama" | "qwen2" | "deepseek_v3"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int  # llama/qwen2 attention head size (deepseek: unused, see qk_*_head_dim)
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # llama: q,k,v,o bias; deepseek: q_a_proj, kv_a_proj_with_mqa, o_proj bias
    qkv_bias: bool = False  # qwen2: q,k,v carry a bias, o does not
    mlp_bias: bool = False
    # normalised RoPE parameters: rope_type, rope_theta and (yarn) factor, original_max_position_embeddings,
    # beta_fast, beta_slow, mscale, mscale_all_dim, attention_factor, truncate
    rope: dict = field(default_factory=lambda: {"rope_type": "default", "rope_theta": 10000.0})
    # DeepSeek-V3 (MLA + DeepSeekMoE + MTP)
    q_lora_rank: Optional[int] = None
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    rope_interleave: bool = True
    moe_intermediate_size: int = 0
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    num_experts_per_tok: int = 0
    n_group: int = 1
    topk_group: int = 1
    norm_topk_prob: bool = True
    routed_scaling_factor: float = 1.0
    first_k_dense_replace: int = 0
    num_nextn_predict_layers: int = 0

    @property
    def qk_head_dim(self):
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @classmethod
    def from_dict(cls, d):
        mt = d["model_type"]
        if mt not in ("llama", "qwen2", "deepseek_v3"):
            raise ValueError(f"unsupported model_type {mt}")
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act=silu is supported")
        if mt == "qwen2" and d.get("use_sliding_window"):
            raise ValueError("qwen2 sliding-window attention is not supported")
        if mt == "deepseek_v3":
            if d.get("scoring_func", "sigmoid") != "sigmoid" or d.get("topk_method", "noaux_tc") != "noaux_tc":
                raise ValueError("deepseek_v3: only scoring_func=sigmoid, topk_method=noaux_tc")
        heads = d["num_attention_heads"]
        c = cls(
            model_type=mt,
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=d.get("num_key_value_heads") or heads,
            head_dim=d.get("head_dim") or d["hidden_size"] // heads,
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            max_position_embeddings=d.get("max_position_embeddings", 2048),
            tie_word_embeddings=d.get("tie_word_embeddings", False),
            attention_bias=d.get("attention_bias", False) if mt != "qwen2" else False,
            qkv_bias=(mt == "qwen2"),
            mlp_bias=d.get("mlp_bias", False),
            rope=normalise_rope(d),
        )
        if mt == "deepseek_v3":
            for k in (
                "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                "moe_intermediate_size", "n_routed_experts", "n_shared_experts", "num_experts_per_tok",
                "n_group", "topk_group", "norm_topk_prob", "routed_scaling_factor", "first_k_dense_replace",
                "num_nextn_predict_layers", "rope_interleave",
            ):
                if k in d:
                    setattr(c, k, d[k])
        return c

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls.from_dict(json.load(f))


def normalise_rope(d):
    """Accept both config styles.

    transformers 5: "rope_parameters": {"rope_theta", "rope_type", yarn fields...}
    older / official DeepSeek: top-level "rope_theta" + "rope_scaling": {"type"|"rope_type", yarn fields} or null.
    """
    if isinstance(d.get("rope_parameters"), dict):
        r = dict(d["rope_parameters"])
    else:
        r = dict(d.get("rope_scaling") or {})
    r["rope_type"] = r.get("rope_type", r.get("type", "default")) or "default"
    r.pop("type", None)
    if r.get("rope_theta") is None:
        r["rope_theta"] = d.get("rope_theta", 10000.0)
    if r["rope_type"] not in ("default", "yarn"):
        raise ValueError(f"unsupported rope_type {r['rope_type']}")
    return r


# ----------------------------------------------------------------------------------------------
# RMSNorm
# ----------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """y = weight * x / sqrt(mean(x^2) + eps), computed in float32."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


# ----------------------------------------------------------------------------------------------
# RoPE (default and YaRN), half-split layout
# ----------------------------------------------------------------------------------------------


def yarn_get_mscale(scale=1.0, mscale=1.0):
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def rope_inv_freq(rope, dim, max_position_embeddings):
    """Returns (inv_freq [dim/2] float32, attention_factor) exactly as transformers' ROPE_INIT_FUNCTIONS."""
    base = float(rope["rope_theta"])
    if rope["rope_type"] == "default":
        exps = torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim
        return 1.0 / (base ** exps), 1.0
    # ---- YaRN (transformers _compute_yarn_parameters) ----
    factor = rope.get("factor")
    orig = rope["original_max_position_embeddings"]
    if factor is None:
        factor = max_position_embeddings / orig
    mscale, mscale_all_dim = rope.get("mscale"), rope.get("mscale_all_dim")
    attention_factor = rope.get("attention_factor")
    if attention_factor is None:
        # SEMANTICS: cos/sin are multiplied by this; for DeepSeek (mscale == mscale_all_dim) it is exactly 1.0
        if mscale and mscale_all_dim:
            attention_factor = float(yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = yarn_get_mscale(factor)
    beta_fast = rope.get("beta_fast") or 32
    beta_slow = rope.get("beta_slow") or 1

    def correction_dim(num_rotations):
        return (dim * math.log(orig / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if rope.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2).to(torch.float32) / dim)
    inv_extra = 1.0 / pos_freqs
    inv_inter = 1.0 / (factor * pos_freqs)
    extra_factor = 1 - ramp  # 1 = keep original frequency (high-frequency dims), 0 = interpolate by `factor`
    inv_freq = inv_inter * (1 - extra_factor) + inv_extra * extra_factor
    return inv_freq, attention_factor


class RotaryEmbedding(nn.Module):
    def __init__(self, rope, dim, max_position_embeddings):
        super().__init__()
        inv_freq, self.attention_factor = rope_inv_freq(rope, dim, max_position_embeddings)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len, device=None):
        """cos, sin of shape [T, dim]: the frequency vector repeated twice (half-split layout)."""
        pos = torch.arange(seq_len, dtype=torch.float32, device=device)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos() * self.attention_factor, emb.sin() * self.attention_factor


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin):
    """SEMANTICS (Llama/Qwen2 layout): dim i is paired with dim i + d/2, both rotated by freq i."""
    return x * cos + rotate_half(x) * sin


def deinterleave(x):
    """(x0,x1),(x2,x3),... -> [x0,x2,x4,...,x1,x3,...].

    SEMANTICS: with rope_interleave, transformers permutes q_pe/k_pe this way and then applies the
    half-split rotation; this equals rotating adjacent pairs (x_{2i}, x_{2i+1}) by freq i as the official
    code does (view_as_complex). The result stays in the permuted order, which is harmless since the same
    permutation is applied to q_pe and k_pe and only their dot product is used.
    """
    *lead, d = x.shape
    return x.reshape(*lead, d // 2, 2).transpose(-1, -2).reshape(*lead, d)


# ----------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")  # torch >= 2.0; Debian's torch 1.13 lacks it
_causal_masks = {}


def causal_attention(q, k, v, scale):
    """softmax(q k^T * scale + causal mask) v. q,k: [B,H,T,Dqk], v: [B,H,T,Dv]."""
    if _HAS_SDPA:
        try:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        except TypeError:  # torch 2.0 has no `scale` argument: fold it into q
            return F.scaled_dot_product_attention(q * (scale * math.sqrt(q.shape[-1])), k, v, is_causal=True)
    # Same computation as SDPA's math backend: one fused scale*(q k^T) + additive causal mask (baddbmm).
    B, H, T, D = q.shape
    S = k.shape[-2]
    key = (T, S, q.dtype, q.device)
    mask = _causal_masks.get(key)
    if mask is None:
        mask = torch.full((T, S), float("-inf"), dtype=q.dtype, device=q.device).triu(S - T + 1)
        _causal_masks[key] = mask
    scores = torch.baddbmm(mask, q.reshape(B * H, T, D), k.reshape(B * H, S, D).transpose(1, 2), alpha=scale)
    out = torch.bmm(torch.softmax(scores, dim=-1), v.reshape(B * H, S, v.shape[-1]))
    return out.view(B, H, T, v.shape[-1])


def repeat_kv(x, n_rep):
    """GQA: KV head j serves query heads j*n_rep ... (j+1)*n_rep-1."""
    if n_rep == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


class LlamaAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.nh, self.nkv, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        qkv_bias = cfg.attention_bias or cfg.qkv_bias
        H = cfg.hidden_size
        self.q_proj = nn.Linear(H, self.nh * self.hd, bias=qkv_bias)
        self.k_proj = nn.Linear(H, self.nkv * self.hd, bias=qkv_bias)
        self.v_proj = nn.Linear(H, self.nkv * self.hd, bias=qkv_bias)
        self.o_proj = nn.Linear(self.nh * self.hd, H, bias=cfg.attention_bias)
        self.scale = self.hd ** -0.5

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = self.nh // self.nkv
        o = causal_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), self.scale)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.nh * self.hd))


class MLAttention(nn.Module):
    """DeepSeek-V3 Multi-head Latent Attention (training / prefill form, no weight absorption)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        H, nh = cfg.hidden_size, cfg.num_attention_heads
        self.nh, self.nope, self.rope_d, self.vd = nh, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.kv_lora_rank, self.interleave = cfg.kv_lora_rank, cfg.rope_interleave
        qk = cfg.qk_head_dim
        if cfg.q_lora_rank is None:
            self.q_proj = nn.Linear(H, nh * qk, bias=False)
        else:
            self.q_a_proj = nn.Linear(H, cfg.q_lora_rank, bias=cfg.attention_bias)
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank, SUBNORM_EPS)
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, nh * qk, bias=False)
        # SEMANTICS: output rows [0, kv_lora_rank) = compressed kv c_KV, rows [kv_lora_rank, +rope) = shared k_pe
        self.kv_a_proj_with_mqa = nn.Linear(H, cfg.kv_lora_rank + cfg.qk_rope_head_dim, bias=cfg.attention_bias)
        self.kv_a_layernorm = RMSNorm(cfg.kv_lora_rank, SUBNORM_EPS)
        # SEMANTICS: per head, rows [nope k | v] (head-major): view as [.., nh, nope + v_head_dim]
        self.kv_b_proj = nn.Linear(cfg.kv_lora_rank, nh * (cfg.qk_nope_head_dim + cfg.v_head_dim), bias=False)
        self.o_proj = nn.Linear(nh * cfg.v_head_dim, H, bias=cfg.attention_bias)
        # SEMANTICS: softmax scale = qk_head_dim^-0.5 (nope+rope), times mscale^2 for YaRN with mscale_all_dim
        self.scale = qk ** -0.5
        r = cfg.rope
        if r["rope_type"] == "yarn" and r.get("mscale_all_dim"):
            m = yarn_get_mscale(r["factor"], r["mscale_all_dim"])
            self.scale = self.scale * m * m

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        if hasattr(self, "q_proj"):
            q = self.q_proj(x)
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(B, T, self.nh, self.nope + self.rope_d).transpose(1, 2)
        q_nope, q_pe = q.split([self.nope, self.rope_d], dim=-1)  # SEMANTICS: per head [nope | rope]

        c_kv, k_pe = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, self.rope_d], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(c_kv)).view(B, T, self.nh, self.nope + self.vd).transpose(1, 2)
        k_nope, v = kv.split([self.nope, self.vd], dim=-1)
        k_pe = k_pe.view(B, 1, T, self.rope_d)  # one k_pe shared by all heads (decoupled RoPE key)

        if self.interleave:
            q_pe, k_pe = deinterleave(q_pe), deinterleave(k_pe)
        q_pe, k_pe = apply_rope(q_pe, cos, sin), apply_rope(k_pe, cos, sin)

        q = torch.cat((q_nope, q_pe), dim=-1)
        k = torch.cat((k_nope, k_pe.expand(B, self.nh, T, self.rope_d)), dim=-1)
        o = causal_attention(q, k, v, self.scale)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.nh * self.vd))


# ----------------------------------------------------------------------------------------------
# Feed-forward: SwiGLU MLP and DeepSeekMoE
# ----------------------------------------------------------------------------------------------


class MLP(nn.Module):
    """down(silu(gate(x)) * up(x))."""

    def __init__(self, hidden, inter, bias=False):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=bias)
        self.up_proj = nn.Linear(hidden, inter, bias=bias)
        self.down_proj = nn.Linear(inter, hidden, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class TopkRouter(nn.Module):
    """Sigmoid router with aux-loss-free bias, group-limited routing (noaux_tc)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.E, self.k = cfg.n_routed_experts, cfg.num_experts_per_tok
        self.n_group, self.topk_group = cfg.n_group, cfg.topk_group
        self.norm_topk_prob, self.scaling = cfg.norm_topk_prob, cfg.routed_scaling_factor
        self.weight = nn.Parameter(torch.empty(self.E, cfg.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.zeros(self.E))

    def forward(self, x):
        """x [N, H] -> (expert indices [N, k] int64, weights [N, k] float32, differentiable)."""
        N = x.shape[0]
        scores = torch.sigmoid(F.linear(x.float(), self.weight.float()))  # SEMANTICS: sigmoid, not softmax
        with torch.no_grad():
            # SEMANTICS: the bias only steers the choice; it never enters the weights.
            biased = scores + self.e_score_correction_bias
            per_group = self.E // self.n_group
            # SEMANTICS: a group's score = sum of its top-2 biased expert scores.
            group_scores = biased.view(N, self.n_group, per_group).topk(min(2, per_group), dim=-1).values.sum(-1)
            top_groups = group_scores.topk(self.topk_group, dim=-1, sorted=False).indices
            keep = torch.zeros(N, self.n_group, dtype=torch.bool, device=x.device).scatter_(1, top_groups, True)
            keep = keep.unsqueeze(-1).expand(N, self.n_group, per_group).reshape(N, self.E)
            # SEMANTICS: transformers fills experts of dropped groups with 0.0 (the official code uses -inf);
            # they differ only if fewer than k kept experts have a positive biased score.
            biased = biased.masked_fill(~keep, 0.0)
            idx = biased.topk(self.k, dim=-1, sorted=False).indices
        w = scores.gather(1, idx)  # SEMANTICS: unbiased sigmoid scores of the chosen experts
        if self.norm_topk_prob:
            w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
        return idx, w * self.scaling


class DeepseekMoE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        H, I = cfg.hidden_size, cfg.moe_intermediate_size
        self.experts = nn.ModuleList([MLP(H, I) for _ in range(cfg.n_routed_experts)])
        self.gate = TopkRouter(cfg)
        self.shared_experts = MLP(H, I * cfg.n_shared_experts)  # SEMANTICS: one MLP of width I * n_shared

    def forward(self, x):
        shape = x.shape
        xf = x.reshape(-1, shape[-1])
        idx, w = self.gate(xf)
        k = idx.shape[1]
        # Dispatch: sort the N*k token slots by expert, run each expert on its contiguous block.
        flat = idx.reshape(-1)
        order = torch.sort(flat, stable=True).indices
        token_of_slot = order // k
        counts = torch.bincount(flat, minlength=len(self.experts)).tolist()
        xs = xf.index_select(0, token_of_slot)
        ws = w.reshape(-1).index_select(0, order).unsqueeze(-1).to(x.dtype)
        # split (not slicing) so that backward concatenates the block grads instead of zero-filling per expert
        outs = [self.experts[e](blk) for e, blk in enumerate(xs.split(counts)) if counts[e]]
        routed = torch.cat(outs, dim=0) * ws
        y = torch.zeros_like(xf).index_add(0, token_of_slot, routed)
        return y.view(shape) + self.shared_experts(x)  # shared experts see every token, weight 1


# ----------------------------------------------------------------------------------------------
# Decoder layer and MTP module
# ----------------------------------------------------------------------------------------------


class DecoderLayer(nn.Module):
    """Pre-norm: h += attn(norm1(h)); h += mlp(norm2(h))."""

    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__()
        H = cfg.hidden_size
        self.input_layernorm = RMSNorm(H, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(H, cfg.rms_norm_eps)
        if cfg.model_type == "deepseek_v3":
            self.self_attn = MLAttention(cfg)
            # SEMANTICS: layers [0, first_k_dense_replace) are dense (intermediate_size); the rest MoE.
            if layer_idx >= cfg.first_k_dense_replace:
                self.mlp = DeepseekMoE(cfg)
            else:
                self.mlp = MLP(H, cfg.intermediate_size)
        else:
            self.self_attn = LlamaAttention(cfg)
            self.mlp = MLP(H, cfg.intermediate_size, bias=cfg.mlp_bias)

    def forward(self, h, cos, sin):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin)
        return h + self.mlp(self.post_attention_layernorm(h))


class SharedHead(nn.Module):
    """Holds only the MTP output norm; the projection is the main lm_head (shared, as in the checkpoint)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class MTPLayer(DecoderLayer):
    """DeepSeek-V3 Multi-Token Prediction module (depth 1), stored as model.layers.<num_hidden_layers>.

    h'_i = eh_proj([enorm(Emb(t_{i+1})) ; hnorm(h_i)])   -> one transformer block -> shared_head.norm -> lm_head
    predicts t_{i+2}. SEMANTICS: the concatenation puts the normed EMBEDDING FIRST and the normed hidden state
    second, as vLLM / SGLang do for the released weights (the paper writes [h ; emb], the weights do not).
    h_i is the main model's output after its final norm (model.norm), as in vLLM / SGLang.
    Embedding and output head are shared with the main model (the checkpoint's copies under
    model.layers.N.embed_tokens / shared_head.head are the same tensors and are not separate parameters here).
    """

    def __init__(self, cfg: ModelConfig, layer_idx: int):
        super().__init__(cfg, layer_idx)
        H = cfg.hidden_size
        self.enorm = RMSNorm(H, cfg.rms_norm_eps)
        self.hnorm = RMSNorm(H, cfg.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * H, H, bias=False)
        self.shared_head = SharedHead(cfg)

    def forward(self, h_main, emb_next, cos, sin):
        x = self.eh_proj(torch.cat((self.enorm(emb_next), self.hnorm(h_main)), dim=-1))
        x = super().forward(x, cos, sin)
        return self.shared_head.norm(x)


# ----------------------------------------------------------------------------------------------
# Causal LM
# ----------------------------------------------------------------------------------------------


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig, mtp: bool):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        layers = [DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)]
        if mtp:
            n = cfg.num_hidden_layers
            layers += [MTPLayer(cfg, n + j) for j in range(cfg.num_nextn_predict_layers)]
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        rope_dim = cfg.qk_rope_head_dim if cfg.model_type == "deepseek_v3" else cfg.head_dim
        self.rotary = RotaryEmbedding(cfg.rope, rope_dim, cfg.max_position_embeddings)


class CausalLM(nn.Module):
    def __init__(self, cfg: ModelConfig, mtp: bool = False):
        super().__init__()
        if mtp and (cfg.model_type != "deepseek_v3" or cfg.num_nextn_predict_layers < 1):
            mtp = False
        if mtp and cfg.num_nextn_predict_layers != 1:
            raise ValueError("only num_nextn_predict_layers = 1 is implemented")
        self.cfg, self.mtp = cfg, mtp
        self.model = Backbone(cfg, mtp)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids, labels=None):
        """Returns dict: logits [B,T,V]; with labels (= input_ids, shifted inside) also loss, main_loss,
        and, when MTP is on, mtp_loss; loss = main_loss + MTP_LOSS_WEIGHT * mtp_loss."""
        m, cfg = self.model, self.cfg
        B, T = input_ids.shape
        emb = m.embed_tokens(input_ids)
        cos, sin = m.rotary(T, input_ids.device)
        h = emb
        for layer in m.layers[: cfg.num_hidden_layers]:
            h = layer(h, cos, sin)
        h = m.norm(h)
        logits = self.lm_head(h)
        out = {"logits": logits}
        if labels is None:
            return out
        main_loss = shifted_cross_entropy(logits, labels, 1)
        out["main_loss"] = main_loss
        out["loss"] = main_loss
        if self.mtp and T > 2:
            mtp_layer = m.layers[cfg.num_hidden_layers]
            # position i (0..T-2) combines h_i with Emb(t_{i+1}) and predicts t_{i+2}; RoPE positions 0..T-2
            # (RoPE is relative, so any common offset gives the same result).
            hm = mtp_layer(h[:, :-1], emb[:, 1:], cos[: T - 1], sin[: T - 1])
            mtp_loss = shifted_cross_entropy(self.lm_head(hm), labels[:, 1:], 1)
            out["mtp_loss"] = mtp_loss
            out["loss"] = main_loss + MTP_LOSS_WEIGHT * mtp_loss
        return out


def shifted_cross_entropy(logits, labels, shift):
    """Mean CE of logits[:, t] against labels[:, t + shift] over the positions that have a label.

    As transformers' ForCausalLMLoss: pad the shifted labels with -100 (ignored) instead of slicing logits,
    which avoids copying the [B, T, V] logits.
    """
    B, T, V = logits.shape
    target = F.pad(labels[:, shift:], (0, shift), value=-100)
    return F.cross_entropy(logits.reshape(B * T, V).float(), target.reshape(B * T), ignore_index=-100)


def build_model(cfg: ModelConfig, mtp: bool = False) -> CausalLM:
    return CausalLM(cfg, mtp=mtp)


# ----------------------------------------------------------------------------------------------
# Loading and initialisation
# ----------------------------------------------------------------------------------------------

_MTP_SHARED_SUFFIXES = (".embed_tokens.weight", ".shared_head.head.weight")


def load_state(model: CausalLM, tensors: dict, strict: bool = True):
    """Load a Hugging Face state dict (per-expert or transformers-5 fused expert tensors)."""
    cfg = model.cfg
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    own.pop("model.rotary.inv_freq", None)
    src = {}
    for name, t in tensors.items():
        if name.endswith("mlp.experts.gate_up_proj"):  # [E, 2I, H]: gate rows then up rows
            pre = name[: -len("gate_up_proj")]
            I = t.shape[1] // 2
            for e in range(t.shape[0]):
                src[f"{pre}{e}.gate_proj.weight"] = t[e, :I]
                src[f"{pre}{e}.up_proj.weight"] = t[e, I:]
        elif name.endswith("mlp.experts.down_proj"):  # [E, H, I]
            pre = name[: -len("down_proj")]
            for e in range(t.shape[0]):
                src[f"{pre}{e}.down_proj.weight"] = t[e]
        else:
            src[name] = t
    unexpected = []
    for name, t in src.items():
        if name.startswith("model.layers."):
            li = int(name.split(".")[2])
            if li >= cfg.num_hidden_layers and (not model.mtp or name.endswith(_MTP_SHARED_SUFFIXES)):
                continue  # MTP weights without an MTP module, or MTP copies of shared tensors
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        p = own.pop(name, None)
        if p is None:
            unexpected.append(name)
            continue
        if tuple(p.shape) != tuple(t.shape):
            raise ValueError(f"{name}: checkpoint shape {tuple(t.shape)} != model shape {tuple(p.shape)}")
        with torch.no_grad():
            p.copy_(t.to(p.dtype))
    if cfg.tie_word_embeddings:
        own.pop("lm_head.weight", None)
    if strict and (unexpected or own):
        raise ValueError(f"load_state: missing {sorted(own)}; unexpected {sorted(unexpected)}")
    return sorted(own), unexpected


def init_weights(model: CausalLM, std: float = 0.02, seed: int = 0):
    """Random init: every Linear/Embedding/router weight ~ N(0, std), biases 0, RMSNorm weights 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * std)
                if getattr(mod, "bias", None) is not None:
                    mod.bias.zero_()
            elif isinstance(mod, RMSNorm):
                mod.weight.fill_(1.0)
            elif isinstance(mod, TopkRouter):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * std)
                mod.e_score_correction_bias.zero_()
    return model
