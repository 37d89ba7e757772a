"""The benchmark cases: every mechanism of `attn list` at small, medium and
large sizes (some also xl), the same inputs and weights for attnd and PyTorch.

A case knows its attnd config (named as the reference constructor names its
arguments), how to build the PyTorch module and the inputs, and its FLOPs
where they are well defined (dense multiply-adds of the mathematical
definition, 2 per multiply-add; None where the work depends on the data,
e.g. hashing and clustering, or is element-wise).

The roofline (issue 12).  Each case also carries
  roof_flops  the FLOPs of the roofline: `flops` where defined; where not, a
              lower bound, the dense multiply-adds the definition performs
              whatever the data (clustered: hashing the queries and the
              centroids against every key; improved_*: plus each query against
              its cluster's top-k keys; reformer: hashing and each query against
              its chunk and the one before, per round; aft_full: the two sums
              over S of the L x S x H x D weighting, without its exps); 0 for
              element-wise mechanisms (aft_simple, axial_positional_embedding)
  traffic     bytes that must cross the memory bus, as a dict:
              "in"      every input tensor read once (float32; a bool mask 1 byte
                        an element), more than once only where the definition
                        needs a second pass over it after a global reduction
                        (listed in "why");
              "out"     the output written once;
              "weights" every parameter read once (float32);
              "inter"   intermediates that must go to memory: a tensor that every
                        block of the next stage reads whole, so it must be
                        complete before that stage can finish any block (the K
                        and V projections in front of softmax attention, the
                        pooled area keys and values, the state between the
                        passes of axial attention), written once and read once.
                        Scores, softmax weights, per-head feature maps and
                        per-position hidden activations can be consumed in the
                        cache tile they are made in, so a fused implementation
                        never stores them: not counted (nothing for fused full).
              "why"     the rule in words for this mechanism.
              run.py checks "in", "out" and "weights" (before second passes)
              against the actual tensors of the run and warns on a mismatch.
Roofline time at T threads = roof_flops / (the run's best sgemm rate at T) +
bytes / (the run's copy bandwidth at T) (bench/run.py).
"""
import math

import torch

import torch_refs as R

N, H, E, D = 1, 8, 64, 64  # the fast-transformers family: (N, L, H, E)
SIZES = ("small", "medium", "large", "xl")


F32 = 4


def traffic(inp, out, weights=0, inter=0, why="", reread=0):
    """Bytes (see the module comment). inp, out, weights, inter in bytes;
    reread: bytes of inputs read a second time (in "in", not in the check)."""
    return {"in": inp + reread, "in_once": inp, "out": out, "weights": weights, "inter": inter, "why": why}


# The projection-bound layers the issue names (issue 12: "where PyTorch
# already runs at the sgemm rate (projection-bound layers such as
# attention_layer, linear_self, compositional, multi_head_area,
# axial_image_transformer)"): dense products of their own weights are most of
# their FLOPs, so the sgemm rate bounds every implementation and the target
# on them is the roofline whatever PyTorch's thread scaling in a run.
PROJECTION_BOUND = frozenset({"attention_layer", "linear_self", "compositional", "multi_head_area",
                              "axial_image_transformer"})


class Case:
    def __init__(self, mech, size, seq, shape, config, build, flops=None, torch_skip=None, check=True,
                 random=False, roof_flops=None, traffic=None):
        self.mech, self.size, self.seq, self.shape = mech, size, seq, shape
        self.config, self.build, self.flops = config, build, flops
        self.roof_flops = flops if roof_flops is None else roof_flops
        self.traffic = traffic
        self.torch_skip = torch_skip  # reason string: PyTorch not run at this size
        self.check = check and not random  # compare attnd's output with PyTorch's
        self.random = random  # the mechanism draws random numbers (outputs differ by design)

    @property
    def projection_bound(self):
        return self.mech in PROJECTION_BOUND

    @property
    def id(self):
        return f"{self.mech}-{self.size}"

    @property
    def bytes(self):
        t = self.traffic
        return t["in"] + t["out"] + t["weights"] + t["inter"] if t else None


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


def qkv_traffic(L, S=None, mask=False, inter=0, why="q, k, v read once, the output written once",
                reread=0):
    S = S or L
    inp = F32 * N * (L * H * E + S * H * E + S * H * D) + (L * S if mask else 0)
    return traffic(inp, F32 * N * L * H * D, inter=inter, why=why, reread=reread)


def kv_state(why="q, k, v once, the output once; the per-head state Σφ(k)vᵀ (H·E·D) written and read"):
    return lambda L, **kw: qkv_traffic(L, inter=2 * F32 * N * H * (E * D + E), why=why, **kw)


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
                          qkv("full", {}, L), full_flops(L, L), traffic=qkv_traffic(L, why="q, k, v read once, the output "
                          "written once; fused: scores and softmax stay in cache"),
                          torch_skip="the reference materialises N·H·L·S floats twice (16 GiB)" if L > 8192 else None))
    for L in seqs4:
        cases.append(Case("linear", SIZES[seqs4.index(L)], L, qkv_shape(L), {"query_dimensions": E},
                          qkv("linear", {"query_dimensions": E}, L), linear_flops(L, L), traffic=kv_state()(L)))
    for L in seqs4:
        cases.append(Case("causal_linear", SIZES[seqs4.index(L)], L, qkv_shape(L) + " causal",
                          {"query_dimensions": E}, qkv("causal_linear", {"query_dimensions": E}, L, causal=True),
                          linear_flops(L, L), traffic=qkv_traffic(L, why="one pass: q, k, v once, the output once "
                                                                  "(the running state stays in cache)")))
    w = 64
    for L in seqs4:
        cases.append(Case("local", SIZES[seqs4.index(L)], L, qkv_shape(L) + f" w={w}", {"local_context": w},
                          qkv("local", {"local_context": w}, L), 2.0 * N * H * L * w * (E + D),
                          traffic=qkv_traffic(L)))
    k = 32
    for L in seqs3:
        cases.append(Case("exact_topk", SIZES[seqs3.index(L)], L, qkv_shape(L) + f" k={k}", {"topk": k},
                          qkv("exact_topk", {"topk": k}, L), 2.0 * N * H * L * (L * E + k * D),
                          traffic=qkv_traffic(L, why="q, k, v once, the output once; a query block's scores and "
                                              "top-k stay in cache")))
    other = {"type": "linear", "query_dimensions": E}
    for L in seqs3:
        cfg = {"other_attention": other, "length_limit": 512}
        cases.append(Case("conditional_full", SIZES[seqs3.index(L)], L,
                          qkv_shape(L) + (" (full)" if L <= 512 else " (linear)"), cfg,
                          qkv("conditional_full", cfg, L), full_flops(L, L) if L <= 512 else linear_flops(L, L),
                          traffic=qkv_traffic(L) if L <= 512 else kv_state()(L)))
    for mech in ("clustered", "improved_clustered", "improved_clustered_causal"):
        for L in seqs3:
            C = min(64, L // 4)
            cfg = {"clusters": C}
            causal = mech.endswith("causal")
            cases.append(Case(mech, SIZES[seqs3.index(L)], L,
                              qkv_shape(L) + f" C={C}" + ("" if mech == "clustered" else " k=32") +
                              (" causal" if causal else ""), cfg,
                              qkv(mech, cfg, L, causal=causal, mask_input=causal), None, random=True,
                              roof_flops=clustered_flops(mech, L, C),
                              traffic=qkv_traffic(L, mask=causal, reread=F32 * N * L * H * E,
                                                  why="q, k, v (and the bool mask) once, the output once, q a "
                                                  "second time after clustering (the centroids are means over "
                                                  "the final clusters)")))
    for L in seqs3:
        cfg = {"chunk_size": 32, "bits": 8, "rounds": 4}
        cases.append(Case("reformer", SIZES[seqs3.index(L)], L, qkv_shape(L) + " chunk=32 bits=8 rounds=4", cfg,
                          qkv("reformer", cfg, L), None, random=True, roof_flops=reformer_flops(L, **cfg),
                          traffic=qkv_traffic(L, reread=(cfg["rounds"] - 1) * F32 * N * L * H * (E + D) +
                                              cfg["rounds"] * F32 * N * L * H * E,
                                              inter=(cfg["rounds"] - 1) * 2 * F32 * N * L * H * D,
                                              why="per round: q read to hash (keys are the normalised "
                                              "queries) and again with v for the chunks, the output "
                                              "accumulated (read and written) from the second round")))
    for i, L in enumerate(aft_seqs):
        cfg = {"max_sequence_length": L, "aft_parameterization": 64}
        cases.append(Case("aft_full", SIZES[i], L, qkv_shape(L), cfg, qkv("aft_full", cfg, L), None,
                          roof_flops=2.0 * L * L * 64 + 2 * 2.0 * N * L * H * D * L,
                          traffic=qkv_traffic(L) | {"weights": F32 * 2 * L * 64,
                                                    "why": "q, k, v once, the output once, u and v (L x 64) once"}))
    for L in seqs4:
        cases.append(Case("aft_simple", SIZES[seqs4.index(L)], L, qkv_shape(L), {}, qkv("aft_simple", {}, L), None,
                          roof_flops=0, traffic=qkv_traffic(L, why="two passes: k, v to the (H, D) sums, q to the "
                                                            "output; each input once")))

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
                          cfg, build, full_flops(L, L) + 2.0 * N * L * dm * dm * 4,
                          traffic=traffic(F32 * 3 * N * L * dm, F32 * N * L * dm, F32 * 4 * (dm * dm + dm),
                                          2 * F32 * 2 * N * L * dm,
                                          "queries, keys, values once, the output once, the 4 projections' "
                                          "weights once; the K and V projections written and read (every query "
                                          "block reads them whole); Q and the attention output stay in cache")))

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
                          2.0 * B * S * areas * (kq + vs),
                          traffic=traffic(F32 * B * S * (2 * kq + vs), F32 * B * S * vs, 0,
                                          2 * F32 * B * areas * (kq + vs),
                                          "q, k, v once, the output once; the pooled area keys and values "
                                          "(areas x (C + V)) written and read: every query reads them all")))
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
                          build, 2.0 * H * S * areas * (kq + vs) + 2.0 * S * dm * dm * 4,
                          traffic=traffic(F32 * 3 * S * dm, F32 * S * dm,
                                          F32 * (dm * H * kq * 2 + dm * H * vs + H * vs * dm + 2 * H * kq + H * vs + dm),
                                          2 * F32 * H * areas * (kq + vs),
                                          "q, k, v once, the output once, the 4 projections once; per head the "
                                          "pooled area keys and values (of the projected k, v) written and read")))

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
        cases.append(Case("axial", SIZES[i], P, f"x=(1,{dim},{side},{side}) heads=8 sum", cfg, build, fl,
                          traffic=traffic(F32 * P * dim, F32 * P * dim, 2 * F32 * (dim * dim * 4 + dim),
                                          2 * F32 * P * dim, reread=F32 * P * dim,
                                          why="two passes (rows, then columns: a column needs every row): x "
                                          "read by each, the first pass's sum written and read by the second, "
                                          "the output written; both axes' weights once")))
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
        wa = dim_t * dim_t * 4 + dim_t + 2 * dim_t  # q, kv, out (+ bias), pre-norm
        wf = 2 * dim_t + 9 * dim_t * 4 * dim_t + 4 * dim_t + 9 * 4 * dim_t * dim_t + dim_t  # norm, conv, conv
        cases.append(Case("axial_image_transformer", SIZES[i], P, f"x=(1,{dim_t},{side},{side}) depth=2 heads=4 rev",
                          cfg, build, 2 * (attn + ff),
                          traffic=traffic(F32 * P * dim_t, F32 * P * dim_t, F32 * (4 * wa + 4 * wf),
                                          8 * 3 * F32 * P * dim_t,
                                          "x once, the output once, every weight once; each of the 8 reversible "
                                          "sub-layers (4 axial attentions, 4 feed-forwards) reads the half it "
                                          "computes from and reads and writes the half it adds to (P x dim each)")))
    for i, side in enumerate(sides):
        cfg = {"dim": dim, "shape": [side, side], "emb_dim_index": 1}

        def build(side=side, cfg=cfg):
            mod = R.AxialPositionalEmbedding(**cfg)
            x = _randn(1, dim, side, side)
            return mod, {"x": x}, lambda: mod(x)
        cases.append(Case("axial_positional_embedding", SIZES[i], side * side, f"x=(1,{dim},{side},{side})", cfg,
                          build, None, roof_flops=0,
                          traffic=traffic(F32 * dim * side * side, F32 * dim * side * side, F32 * 2 * dim * side,
                                          why="x once, the output once, the two (dim x side) tables once")))

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
                          cfg, build, fl,
                          traffic=traffic(F32 * L * dm, F32 * L * dm, F32 * (dm * dh * (3 * s + r) + dh * dh + s * dh * dm),
                                          2 * F32 * L * dh * (s + r),
                                          "x once, the output once, the weights once; the search keys (s heads) "
                                          "and retrieval values (r) written and read: every query reads them all")))

    # ---- linear-attention-transformer ----
    for L in seqs4:
        cfg = {"dim": dm, "heads": H}

        def build(L=L, cfg=cfg):
            mod = R.LinearSelfAttention(**cfg)
            x = _randn(1, L, dm)
            return mod, {"x": x}, lambda: mod(x)
        fl = 2.0 * L * dm * dm * 4 + 2.0 * H * L * E * D * 2
        cases.append(Case("linear_self", SIZES[seqs4.index(L)], L, f"B=1 n={L} dim={dm} heads={H}", cfg, build, fl,
                          traffic=traffic(F32 * L * dm, F32 * L * dm, F32 * (4 * dm * dm + dm), 2 * F32 * H * E * D,
                                          "two passes: x to K, V and the per-head context (written and read), "
                                          "x again to Q and the output; the weights once", reread=F32 * L * dm)))
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
                          build, fl,
                          traffic=traffic(F32 * P * chan, F32 * P * chan, F32 * (4 * chan * dm + 3 * dm + chan),
                                          2 * F32 * H * 64 * 64, "two passes: x to K, V and the per-head context "
                                          "(written and read), x again to Q and the output; the weights once",
                                          reread=F32 * P * chan)))
    for c in cases:
        assert c.traffic is not None and c.roof_flops is not None, c.id
    return cases


def clustered_flops(mech, L, C, bits=32, k=32):
    """Lower bound (module comment): hashing the queries against `bits`
    planes, the C centroids against every key (QKᵀ and AV; improved_causal
    keeps only the centroids' QKᵀ for the top-k), each query against its
    cluster's top-k keys."""
    f = 2.0 * N * H * L * (E + 1) * bits
    if mech == "improved_clustered_causal":
        return f + 2.0 * N * H * C * L * E + 2.0 * N * H * L * k * (E + D)
    f += 2.0 * N * H * C * L * (E + D)
    if mech == "improved_clustered":
        f += 2.0 * N * H * L * k * (E + D)
    return f


def reformer_flops(L, chunk_size, bits, rounds):
    """Per round: hashing (E x bits planes) and each query against its chunk
    and the one before (2 x chunk keys)."""
    return rounds * (2.0 * N * L * H * E * bits + 2.0 * N * H * L * 2 * chunk_size * (E + D))
