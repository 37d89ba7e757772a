"""The benchmark cases: every mechanism of `attn list` at small, medium and
large sizes (some also xl), the same inputs and weights for attnd and PyTorch.

A case knows its attnd config (named as the reference constructor names its
arguments), how to build the PyTorch module and the inputs, and its FLOPs
where they are well defined (dense multiply-adds of the mathematical
definition, 2 per multiply-add; None where the work depends on the data,
e.g. hashing and clustering, or is element-wise).
"""
import math

import torch

import torch_refs as R

N, H, E, D = 1, 8, 64, 64  # the fast-transformers family: (N, L, H, E)
SIZES = ("small", "medium", "large", "xl")


class Case:
    def __init__(self, mech, size, seq, shape, config, build, flops=None, torch_skip=None, check=True,
                 random=False):
        self.mech, self.size, self.seq, self.shape = mech, size, seq, shape
        self.config, self.build, self.flops = config, build, flops
        self.torch_skip = torch_skip  # reason string: PyTorch not run at this size
        self.check = check and not random  # compare attnd's output with PyTorch's
        self.random = random  # the mechanism draws random numbers (outputs differ by design)

    @property
    def id(self):
        return f"{self.mech}-{self.size}"


def _randn(*shape):
    return torch.randn(*shape)


def qkv(mech, config, L, S=None, causal=False, mask_input=False):
    """A fast-transformers inner attention over q (N,L,H,E), k, v."""
    S = S or L

    def build():
        mod = R.inner_from_spec({"type": mech, **config})
        q, k, v = _randn(N, L, H, E), _randn(N, S, H, E), _randn(N, S, H, D)
        m = R.Masks(N, L, S, causal)
        ins = {"queries": q, "keys": k, "values": v}
        if mask_input:
            ins["attn_mask"] = torch.ones(L, S, dtype=torch.bool).tril_()
        return mod, ins, lambda: mod(q, k, v, m)
    return build


def full_flops(L, S):
    return 2.0 * N * H * L * S * (E + D)


def linear_flops(L, S):
    # φ(K)ᵀV, Σφ(K), φ(Q)·Σφ(K), φ(Q)(KᵀV)
    return 2.0 * N * H * (S * E * D + L * E * D) + 2.0 * N * H * (S * E + L * E)


def make_cases(tiny=False):
    """tiny: one size per mechanism, small enough for the smoke test."""
    cases = []
    seqs4 = [64] if tiny else [256, 1024, 4096, 16384]
    seqs3 = [64] if tiny else [256, 1024, 4096]
    aft_seqs = [32] if tiny else [128, 256, 512]
    memories = [(4, 8)] if tiny else [(16, 16), (32, 32), (32, 64)]
    sides = [8] if tiny else [32, 64, 128]
    sides_t = [8] if tiny else [16, 32, 64]

    def qkv_shape(L):
        return f"N={N} L=S={L} H={H} E=D={E}"

    # ---- fast-transformers inner attentions ----
    for L in seqs4:
        cases.append(Case("full", SIZES[seqs4.index(L)], L, qkv_shape(L), {"softmax_temp": None},
                          qkv("full", {}, L), full_flops(L, L),
                          torch_skip="the reference materialises N·H·L·S floats twice (16 GiB)" if L > 8192 else None))
    for L in seqs4:
        cases.append(Case("linear", SIZES[seqs4.index(L)], L, qkv_shape(L), {"query_dimensions": E},
                          qkv("linear", {"query_dimensions": E}, L), linear_flops(L, L)))
    for L in seqs4:
        cases.append(Case("causal_linear", SIZES[seqs4.index(L)], L, qkv_shape(L) + " causal",
                          {"query_dimensions": E}, qkv("causal_linear", {"query_dimensions": E}, L, causal=True),
                          linear_flops(L, L)))
    w = 64
    for L in seqs4:
        cases.append(Case("local", SIZES[seqs4.index(L)], L, qkv_shape(L) + f" w={w}", {"local_context": w},
                          qkv("local", {"local_context": w}, L), 2.0 * N * H * L * w * (E + D)))
    k = 32
    for L in seqs3:
        cases.append(Case("exact_topk", SIZES[seqs3.index(L)], L, qkv_shape(L) + f" k={k}", {"topk": k},
                          qkv("exact_topk", {"topk": k}, L), 2.0 * N * H * L * (L * E + k * D)))
    other = {"type": "linear", "query_dimensions": E}
    for L in seqs3:
        cfg = {"other_attention": other, "length_limit": 512}
        cases.append(Case("conditional_full", SIZES[seqs3.index(L)], L,
                          qkv_shape(L) + (" (full)" if L <= 512 else " (linear)"), cfg,
                          qkv("conditional_full", cfg, L), full_flops(L, L) if L <= 512 else linear_flops(L, L)))
    for mech in ("clustered", "improved_clustered", "improved_clustered_causal"):
        for L in seqs3:
            C = min(64, L // 4)
            cfg = {"clusters": C}
            causal = mech.endswith("causal")
            cases.append(Case(mech, SIZES[seqs3.index(L)], L,
                              qkv_shape(L) + f" C={C}" + ("" if mech == "clustered" else " k=32") +
                              (" causal" if causal else ""), cfg,
                              qkv(mech, cfg, L, causal=causal, mask_input=causal), None, random=True))
    for L in seqs3:
        cfg = {"chunk_size": 32, "bits": 8, "rounds": 4}
        cases.append(Case("reformer", SIZES[seqs3.index(L)], L, qkv_shape(L) + " chunk=32 bits=8 rounds=4", cfg,
                          qkv("reformer", cfg, L), None, random=True))
    for i, L in enumerate(aft_seqs):
        cfg = {"max_sequence_length": L, "aft_parameterization": 64}
        cases.append(Case("aft_full", SIZES[i], L, qkv_shape(L), cfg, qkv("aft_full", cfg, L), None))
    for L in seqs4:
        cases.append(Case("aft_simple", SIZES[seqs4.index(L)], L, qkv_shape(L), {}, qkv("aft_simple", {}, L), None))

    # ---- attention_layer: projections around full attention ----
    dm = H * E
    for L in seqs3:
        cfg = {"attention": {"type": "full"}, "d_model": dm, "n_heads": H}

        def build(L=L, cfg=cfg):
            mod = R.AttentionLayer(R.FullAttention(), dm, H)
            q, k, v = _randn(N, L, dm), _randn(N, L, dm), _randn(N, L, dm)
            m = R.Masks(N, L, L)
            return mod, {"queries": q, "keys": k, "values": v}, lambda: mod(q, k, v, m)
        cases.append(Case("attention_layer", SIZES[seqs3.index(L)], L, f"N={N} L=S={L} d_model={dm} H={H} inner=full",
                          cfg, build, full_flops(L, L) + 2.0 * N * L * dm * dm * 4))

    # ---- area-attention: 2-D memory, areas up to 2x2, mean keys, summed values ----
    B, kq, vs = 8, 64, 64
    for i, (mh, mw) in enumerate(memories):
        S = mh * mw
        cfg = {"key_query_size": kq, "area_key_mode": "mean", "area_value_mode": "sum", "max_area_height": 2,
               "max_area_width": 2, "memory_height": mh, "memory_width": mw}
        areas = sum((mh - a + 1) * (mw - b + 1) for a in (1, 2) for b in (1, 2))

        def build(S=S, cfg=cfg):
            mod = R.AreaAttention(**cfg)
            q, k, v = _randn(B, S, kq), _randn(B, S, kq), _randn(B, S, vs)
            return mod, {"q": q, "k": k, "v": v}, lambda: mod(q, k, v)
        cases.append(Case("area", SIZES[i], S, f"B={B} Nq=S={S} ({mh}x{mw}) areas={areas} C={kq}", cfg, build,
                          2.0 * B * S * areas * (kq + vs)))
    for i, (mh, mw) in enumerate(memories):
        S = mh * mw
        inner = {"key_query_size": kq, "area_key_mode": "mean", "area_value_mode": "sum", "max_area_height": 2,
                 "max_area_width": 2, "memory_height": mh, "memory_width": mw}
        cfg = {"area_attention": inner, "num_heads": H, "key_query_size": dm, "key_query_size_hidden": kq,
               "value_size": dm, "value_size_hidden": vs}
        areas = sum((mh - a + 1) * (mw - b + 1) for a in (1, 2) for b in (1, 2))

        def build(S=S, cfg=cfg, inner=inner):
            c = dict(cfg)
            c["area_attention"] = R.AreaAttention(**inner)
            mod = R.MultiHeadAreaAttention(**c)
            q, k, v = _randn(1, S, dm), _randn(1, S, dm), _randn(1, S, dm)
            return mod, {"q": q, "k": k, "v": v}, lambda: mod(q, k, v)
        cases.append(Case("multi_head_area", SIZES[i], S, f"B=1 Nq=S={S} ({mh}x{mw}) heads={H} dim={dm}", cfg,
                          build, 2.0 * H * S * areas * (kq + vs) + 2.0 * S * dm * dm * 4))

    # ---- axial-attention ----
    dim = 64
    for i, side in enumerate(sides):
        cfg = {"dim": dim, "num_dimensions": 2, "heads": 8, "dim_index": 1, "sum_axial_out": True}

        def build(side=side, cfg=cfg):
            mod = R.AxialAttention(**cfg)
            x = _randn(1, dim, side, side)
            return mod, {"x": x}, lambda: mod(x)
        P = side * side
        # per axis: q, kv, out projections + q·k and a·v along the axis
        fl = 2 * (2.0 * P * dim * dim * 4 + 2.0 * P * side * dim * 2)
        cases.append(Case("axial", SIZES[i], P, f"x=(1,{dim},{side},{side}) heads=8 sum", cfg, build, fl))
    dim_t = 32
    for i, side in enumerate(sides_t):
        cfg = {"dim": dim_t, "depth": 2, "heads": 4, "dim_index": 1, "reversible": True}

        def build(side=side, cfg=cfg):
            mod = R.AxialImageTransformer(**cfg)
            x = _randn(1, dim_t, side, side)
            return mod, {"x": x}, lambda: mod(x)
        P = side * side
        attn = 2 * (2.0 * P * dim_t * dim_t * 4 + 2.0 * P * side * dim_t * 2)
        ff = 2 * (2.0 * P * 9 * dim_t * 4 * dim_t * 2)
        cases.append(Case("axial_image_transformer", SIZES[i], P, f"x=(1,{dim_t},{side},{side}) depth=2 heads=4 rev",
                          cfg, build, 2 * (attn + ff)))
    for i, side in enumerate(sides):
        cfg = {"dim": dim, "shape": [side, side], "emb_dim_index": 1}

        def build(side=side, cfg=cfg):
            mod = R.AxialPositionalEmbedding(**cfg)
            x = _randn(1, dim, side, side)
            return mod, {"x": x}, lambda: mod(x)
        cases.append(Case("axial_positional_embedding", SIZES[i], side * side, f"x=(1,{dim},{side},{side})", cfg,
                          build, None))

    # ---- compositional-attention ----
    s, r, dh = 8, 2, 64
    for L in seqs3:
        cfg = {"dim": dm, "dim_head": dh, "num_searches": s, "num_retrievals": r}

        def build(L=L, cfg=cfg):
            mod = R.CompositionalAttention(**cfg)
            x = _randn(1, L, dm)
            return mod, {"x": x}, lambda: mod(x)
        fl = (2.0 * L * dm * dh * (3 * s + r) + 2.0 * s * L * L * dh + 2.0 * s * r * L * L * dh +
              2.0 * s * r * L * dh * dh + 4.0 * s * L * r * dh + 2.0 * L * s * dh * dm)
        cases.append(Case("compositional", SIZES[seqs3.index(L)], L, f"B=1 n={L} dim={dm} searches={s} retrievals={r}",
                          cfg, build, fl))

    # ---- linear-attention-transformer ----
    for L in seqs4:
        cfg = {"dim": dm, "heads": H}

        def build(L=L, cfg=cfg):
            mod = R.LinearSelfAttention(**cfg)
            x = _randn(1, L, dm)
            return mod, {"x": x}, lambda: mod(x)
        fl = 2.0 * L * dm * dm * 4 + 2.0 * H * L * E * D * 2
        cases.append(Case("linear_self", SIZES[seqs4.index(L)], L, f"B=1 n={L} dim={dm} heads={H}", cfg, build, fl))
    chan = 64
    for i, side in enumerate(sides):
        cfg = {"chan": chan, "key_dim": 64, "value_dim": 64, "heads": 8}

        def build(side=side, cfg=cfg):
            mod = R.ImageLinearAttention(**cfg)
            x = _randn(1, chan, side, side)
            return mod, {"x": x}, lambda: mod(x)
        P = side * side
        fl = 2.0 * P * chan * dm * 3 + 2.0 * P * dm * chan + 2.0 * H * P * 64 * 64 * 2
        cases.append(Case("linear_image", SIZES[i], P, f"x=(1,{chan},{side},{side}) heads=8 key=value=64", cfg,
                          build, fl))
    return cases
