"""PyTorch forwards of every attnd mechanism, for the benchmarks.

Each is written the way its reference library writes it (same tensor ops in
the same order, eval() mode, no dropout), from the reference sources:
fast-transformers (idiap, 0.4.0), area-attention, axial-attention 0.6.1,
compositional-attention-pytorch and linear-attention-transformer
(lucidrains).  Where a reference calls a compiled extension that Debian's
torch does not have (fast-transformers' local_product, causal_product,
hashing, Hamming k-means, clustered aggregate/broadcast and sparse products)
the extension is replaced by vectorised torch code doing the same work; those
stand-ins are marked STAND-IN below and in the results.

Module classes carry their parameters under the reference state_dict names,
so `module.state_dict()` is what attnd loads as weights.safetensors.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import einsum, nn

# ---------------------------------------------------------------------------
# fast-transformers inner attentions: forward(q, k, v, masks) with
# q (N,L,H,E), k (N,S,H,E), v (N,S,H,D).  Masks are passed as the reference's
# mask objects would supply them: key_add = key_lengths.additive_matrix (N,S),
# key_float = key_lengths.float_matrix (N,S), attn_add = attn_mask.additive_matrix
# (L,S) or None when attn_mask.all_ones.


class Masks:
    """The fast_transformers.masking objects the builders pass: an all-ones
    FullMask (or a causal TriangularCausalMask) and full-length LengthMasks."""

    def __init__(self, N, L, S, causal=False):
        self.causal = causal
        self.key_float = torch.ones(N, S)
        self.key_add = torch.zeros(N, S)  # log(1) = 0
        self.key_lengths = torch.full((N,), S, dtype=torch.long)
        self.query_lengths = torch.full((N,), L, dtype=torch.long)
        self.attn_add = None
        if causal:
            self.attn_add = torch.log(torch.ones(L, S).tril_())


def elu_feature_map(x):
    return F.elu(x) + 1


class FullAttention(nn.Module):
    def __init__(self, softmax_temp=None, **_):
        super().__init__()
        self.softmax_temp = softmax_temp

    def forward(self, queries, keys, values, m):
        N, L, H, E = queries.shape
        temp = self.softmax_temp or 1. / math.sqrt(E)
        QK = torch.einsum("nlhe,nshe->nhls", queries, keys)
        if m.attn_add is not None:
            QK = QK + m.attn_add
        QK = QK + m.key_add[:, None, None]
        A = torch.softmax(temp * QK, dim=-1)
        V = torch.einsum("nhls,nshd->nlhd", A, values)
        return V.contiguous()


class LinearAttention(nn.Module):
    def __init__(self, query_dimensions=None, eps=1e-6, **_):
        super().__init__()
        self.eps = eps

    def forward(self, queries, keys, values, m):
        Q = elu_feature_map(queries)
        K = elu_feature_map(keys)
        K = K * m.key_float[:, :, None, None]
        KV = torch.einsum("nshd,nshm->nhmd", K, values)
        Z = 1 / (torch.einsum("nlhd,nhd->nlh", Q, K.sum(dim=1)) + self.eps)
        V = torch.einsum("nlhd,nhmd,nlh->nlhm", Q, KV, Z)
        return V.contiguous()


def causal_dot_product(Q, K, V, chunk=128):
    """STAND-IN for fast_transformers.causal_product.causal_dot_product
    (a compiled kernel): out[l] = Σ_{s<=l} (Q[l]·K[s]) V[s], over (N,H,L,·),
    computed in chunks (masked product inside a chunk, running Kᵀ V state
    across chunks) so it stays O(L) in memory."""
    N, H, L, E = Q.shape
    D = V.shape[-1]
    out = torch.empty(N, H, L, D)
    state = torch.zeros(N, H, E, D)
    for c0 in range(0, L, chunk):
        c1 = min(L, c0 + chunk)
        q, k, v = Q[:, :, c0:c1], K[:, :, c0:c1], V[:, :, c0:c1]
        A = torch.matmul(q, k.transpose(-1, -2)).tril_()
        out[:, :, c0:c1] = torch.matmul(A, v) + torch.matmul(q, state)
        state = state + torch.matmul(k.transpose(-1, -2), v)
    return out


class CausalLinearAttention(nn.Module):
    def __init__(self, query_dimensions=None, eps=1e-6, **_):
        super().__init__()
        self.eps = eps

    def forward(self, queries, keys, values, m):
        Q = elu_feature_map(queries)
        K = elu_feature_map(keys)
        K = K * m.key_float[:, :, None, None]
        Z = 1 / (torch.einsum("nlhi,nlhi->nlh", Q, K.cumsum(1)) + self.eps)
        V = causal_dot_product(Q.permute(0, 2, 1, 3).contiguous(), K.permute(0, 2, 1, 3).contiguous(),
                               values.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3)
        return V * Z[:, :, :, None]


class LocalAttention(nn.Module):
    """STAND-IN for local_dot_product / local_weighted_average (compiled):
    query l sees keys l-⌊w/2⌋ … l+⌈w/2⌉-1; done block by block so that only
    a (block × (block + w)) score tile exists at a time."""

    def __init__(self, local_context, softmax_temp=None, block=128, **_):
        super().__init__()
        self.w = local_context
        self.softmax_temp = softmax_temp
        self.block = block

    def forward(self, queries, keys, values, m):
        N, L, H, E = queries.shape
        S, D = values.shape[1], values.shape[3]
        temp = self.softmax_temp or 1. / math.sqrt(E)
        q = queries.permute(0, 2, 1, 3).contiguous()
        k = keys.permute(0, 2, 1, 3).contiguous()
        v = values.permute(0, 2, 1, 3).contiguous()
        half, up = self.w // 2, (self.w + 1) // 2
        out = torch.empty(N, H, L, D)
        for b0 in range(0, L, self.block):
            b1 = min(L, b0 + self.block)
            s0, s1 = max(0, b0 - half), min(S, b1 - 1 + up)
            QK = torch.matmul(q[:, :, b0:b1], k[:, :, s0:s1].transpose(-1, -2))
            li = torch.arange(b0, b1)[:, None]
            si = torch.arange(s0, s1)[None, :]
            QK = QK + m.key_add[:, None, None, s0:s1]
            QK.masked_fill_((si < li - half) | (si >= li + up), float("-inf"))
            A = torch.softmax(temp * QK, dim=-1)
            out[:, :, b0:b1] = torch.matmul(A, v[:, :, s0:s1])
        return out.permute(0, 2, 1, 3).contiguous()


class ExactTopKAttention(nn.Module):
    def __init__(self, topk=32, softmax_temp=None, **_):
        super().__init__()
        self.topk = topk
        self.softmax_temp = softmax_temp

    def forward(self, queries, keys, values, m):
        N, L, H, E = queries.shape
        S = values.shape[1]
        temp = self.softmax_temp or 1. / math.sqrt(E)
        QK = torch.einsum("nlhe,nshe->nhls", queries, keys)
        topk = min(self.topk, S)
        if m.attn_add is not None:
            QK = QK + m.attn_add
        QK = QK + m.key_add[:, None, None]
        _, topk_idx = torch.topk(QK, topk, sorted=False, dim=-1)
        mask = QK.new_ones(QK.shape) * float("-inf")
        mask[torch.arange(N).view(N, 1, 1, 1), torch.arange(H).view(1, H, 1, 1),
             torch.arange(L).view(1, 1, L, 1), topk_idx] = 0.
        QK = QK + mask
        A = torch.softmax(temp * QK, dim=-1)
        V = torch.einsum("nhls,nshd->nlhd", A, values)
        return V.contiguous()


class ConditionalFullAttention(nn.Module):
    def __init__(self, other_attention, length_limit=512, softmax_temp=None, **_):
        super().__init__()
        self.full_attention = FullAttention(softmax_temp)
        self.other_attention = other_attention
        self.length_limit = length_limit

    def forward(self, queries, keys, values, m):
        L, S = queries.shape[1], values.shape[1]
        if L > self.length_limit or S > self.length_limit:
            return self.other_attention(queries, keys, values, m)
        return self.full_attention(queries, keys, values, m)


class AFTFullAttention(nn.Module):
    def __init__(self, max_sequence_length=1024, aft_parameterization=64, **_):
        super().__init__()
        self.u = nn.Parameter(torch.randn(max_sequence_length, aft_parameterization) * 0.01)
        self.v = nn.Parameter(torch.randn(max_sequence_length, aft_parameterization) * 0.01)

    def forward(self, queries, keys, values, m):
        N, L, H, E = queries.shape
        S = values.shape[1]
        Q = torch.sigmoid(queries)
        K = keys.permute(0, 2, 3, 1).contiguous()
        V = values.permute(0, 2, 3, 1).contiguous()
        K = K + m.key_add[:, None, None, :]
        w = self.u[:L].mm(self.v[:S].t())
        if m.attn_add is not None:
            w = w + m.attn_add
        else:
            w = w + torch.zeros(L, S)  # FullMask.additive_matrix of an all-ones mask
        K = K[:, None, :, :, :] * w[None, :, None, None, :]
        K = torch.softmax(K, dim=-1)
        return Q * torch.einsum("nlhds,nhds->nlhd", K, V)


class AFTSimpleAttention(nn.Module):
    def forward(self, queries, keys, values, m):
        Q = torch.sigmoid(queries)
        K = keys + m.key_add[:, :, None, None]
        if m.causal:
            M, _ = K.max(dim=1, keepdim=True)
            Kexp = torch.exp(K - M)
            K = Kexp / Kexp.cumsum(dim=1)
            return Q * (K * values).cumsum(dim=1)
        K = torch.softmax(K, dim=1)
        return Q * (K * values).sum(dim=1, keepdim=True)


# ---- clustered family: STAND-INs for compute_hashes, cluster (Hamming
# k-means), clustered_aggregate / clustered_broadcast and the clustered sparse
# products, vectorised over (N·H).  The Python modules around them follow the
# reference: sort queries by cluster, aggregate, attend with centroids,
# broadcast back, un-sort.

def compute_hashes(X, planes):
    """(M,E), (bits,E+1) -> (M, bits) ±1 (the bits as signs)."""
    E = X.shape[1]
    return torch.where(X @ planes[:, :E].t() > planes[:, E], 1.0, -1.0)


def hamming_kmeans(B, lengths, C, iterations, bits):
    """B (NH, L, bits) ±1.  Lloyd iterations in Hamming space; distances
    via ±1 dot products (d = (bits - b·c) / 2), centroids by majority."""
    NH, L, _ = B.shape
    idx = torch.randperm(L)[:C]
    cent = B[:, idx].clone()
    for _ in range(max(iterations, 1)):
        clusters = torch.argmax(torch.bmm(B, cent.transpose(1, 2)), dim=-1)  # max dot = min Hamming
        onehot = F.one_hot(clusters, C).float()  # (NH, L, C)
        votes = torch.bmm(onehot.transpose(1, 2), B)  # (NH, C, bits)
        cent = torch.where(votes > 0, 1.0, -1.0)
    counts = onehot.sum(1).long()  # (NH, C)
    return clusters, counts


def clustered_aggregate(Q, clusters, factors, C):
    """Q (NH, L, E) -> (NH, C, E): Σ over each cluster's queries × factor."""
    NH, L, E = Q.shape
    out = torch.zeros(NH, C, E)
    out.scatter_add_(1, clusters[:, :, None].expand(NH, L, E), Q)
    return out * factors[:, :, None]


def clustered_broadcast(Vc, clusters):
    """Vc (NH, C, D) -> (NH, L, D)."""
    NH, C, D = Vc.shape
    return torch.gather(Vc, 1, clusters[:, :, None].expand(-1, -1, D))


class _Clustered(nn.Module):
    def __init__(self, clusters, iterations=10, bits=32, hash_bias=True, topk=32, softmax_temp=None, **_):
        super().__init__()
        self.clusters, self.iterations, self.bits = clusters, iterations, bits
        self.hash_bias, self.topk, self.softmax_temp = hash_bias, topk, softmax_temp

    def _groups(self, Q):
        N, H, L, E = Q.shape
        planes = Q.new_empty((self.bits, E + 1))
        nn.init.normal_(planes)
        if not self.hash_bias:
            planes[:, -1] = 0
        B = compute_hashes(Q.reshape(N * H * L, E), planes).view(N * H, L, self.bits)
        clusters, counts = hamming_kmeans(B, None, self.clusters, self.iterations, self.bits)
        sorted_clusters, sorted_indx = torch.sort(clusters, dim=-1)
        return sorted_clusters, counts, sorted_indx

    def _prep(self, queries, keys, values):
        q = queries.permute(0, 2, 1, 3).contiguous()
        k = keys.permute(0, 2, 1, 3).contiguous()
        v = values.permute(0, 2, 1, 3).contiguous()
        N, H, L, E = q.shape
        clusters, counts, sorted_indx = self._groups(q)
        s_q = torch.gather(q.reshape(N * H, L, E), 1, sorted_indx[:, :, None].expand(-1, -1, E))
        factors = 1. / counts.float().clamp_min(1)
        Qc = clustered_aggregate(s_q, clusters, factors, self.clusters)
        return q, k, v, clusters, counts, sorted_indx, s_q, Qc

    @staticmethod
    def _unsort(Vs, sorted_indx, N, H):
        NH, L, D = Vs.shape
        rev = torch.argsort(sorted_indx, dim=-1)
        V = torch.gather(Vs, 1, rev[:, :, None].expand(-1, -1, D)).view(N, H, L, D)
        return V.permute(0, 2, 1, 3).contiguous()


class ClusteredAttention(_Clustered):
    def forward(self, queries, keys, values, m):
        q, k, v, clusters, counts, sidx, s_q, Qc = self._prep(queries, keys, values)
        N, H, L, E = q.shape
        S, D = v.shape[2], v.shape[3]
        temp = self.softmax_temp or 1. / math.sqrt(E)
        QK = torch.einsum("nhle,nhse->nhls", Qc.view(N, H, -1, E), k)
        QK = QK + m.key_add[:, None, None, :]
        A = torch.softmax(temp * QK, dim=-1)
        V = torch.einsum("nhls,nhsd->nhld", A, v)
        Vs = clustered_broadcast(V.reshape(N * H, -1, D), clusters)
        return self._unsort(Vs, sidx, N, H)


class ImprovedClusteredAttention(_Clustered):
    def forward(self, queries, keys, values, m):
        q, k, v, clusters, counts, sidx, s_q, Qc = self._prep(queries, keys, values)
        N, H, L, E = q.shape
        S, D = v.shape[2], v.shape[3]
        C = self.clusters
        temp = self.softmax_temp or 1. / math.sqrt(E)
        QK = torch.einsum("nhle,nhse->nhls", Qc.view(N, H, C, E), k)
        QK = QK + m.key_add[:, None, None, :]
        kk = min(self.topk, S)
        topk_values, topk = torch.topk(QK, kk, sorted=False, dim=-1)
        # bottom-k: the centroid's attention on every key outside its top-k
        A = torch.softmax(temp * QK, dim=-1)
        mask = QK.new_ones(QK.shape)
        mask[torch.arange(N).view(N, 1, 1, 1), torch.arange(H).view(1, H, 1, 1),
             torch.arange(C).view(1, 1, C, 1), topk] = 0
        A = A * mask
        A_bottomk = A.sum(-1)
        V_b = torch.einsum("nhls,nhse->nhle", A, v)
        V_bottom = clustered_broadcast(V_b.reshape(N * H, C, D), clusters)
        # top-k: each query against its cluster's top-k keys (clustered_sparse_dot_product)
        tk = topk.reshape(N * H, C, kk)
        kidx = torch.gather(tk, 1, clusters[:, :, None].expand(-1, -1, kk))  # (NH, L, kk)
        kf = k.reshape(N * H, S, E)
        Kg = kf[torch.arange(N * H)[:, None, None], kidx]  # (NH, L, kk, E)
        QKt = torch.einsum("nle,nlke->nlk", s_q, Kg)
        Ak = torch.softmax(temp * QKt, dim=-1)
        Ab = clustered_broadcast(A_bottomk.reshape(N * H, C, 1), clusters)
        Ak = Ak * (1.0 - Ab)
        Vg = v.reshape(N * H, S, D)[torch.arange(N * H)[:, None, None], kidx]  # (NH, L, kk, D)
        V_top = torch.einsum("nlk,nlkd->nld", Ak, Vg)
        return self._unsort(V_top + V_bottom, sidx, N, H)


class ImprovedClusteredCausalAttention(_Clustered):
    def forward(self, queries, keys, values, m):
        q, k, v, clusters, counts, sidx, s_q, Qc = self._prep(queries, keys, values)
        N, H, L, E = q.shape
        S, D = v.shape[2], v.shape[3]
        C = self.clusters
        temp = self.softmax_temp or 1. / math.sqrt(E)
        QK = torch.einsum("nhle,nhse->nhls", Qc.view(N, H, C, E), k)
        QK = QK + m.key_add[:, None, None, :]
        kk = min(self.topk, int(m.key_lengths.min()))
        _, topk = torch.topk(QK, kk, sorted=False, dim=-1)
        tk = topk.reshape(N * H, C, kk)
        kidx = torch.gather(tk, 1, clusters[:, :, None].expand(-1, -1, kk))
        Kg = k.reshape(N * H, S, E)[torch.arange(N * H)[:, None, None], kidx]
        QKt = torch.einsum("nle,nlke->nlk", s_q, Kg)
        fut = kidx > sidx[:, :, None]  # sidx: the original position of each sorted query
        QKt = QKt.masked_fill(fut, -1e7)
        Ak = torch.softmax(temp * QKt, dim=-1) * (1. - fut.float())
        Vg = v.reshape(N * H, S, D)[torch.arange(N * H)[:, None, None], kidx]
        return self._unsort(torch.einsum("nlk,nlkd->nld", Ak, Vg), sidx, N, H)


class ReformerAttention(nn.Module):
    """The reference is plain torch; this follows it op for op."""

    def __init__(self, chunk_size=32, bits=8, rounds=4, masked=False, softmax_temp=None, **_):
        super().__init__()
        self.chunk_size, self.bits, self.rounds = chunk_size, bits, rounds
        self.masked, self.softmax_temp = masked, softmax_temp

    @staticmethod
    def _normalize(x):
        norms = torch.sqrt(torch.einsum("nlhe,nlhe->nlh", x, x))
        return x / norms.unsqueeze(-1)

    @staticmethod
    def _look_back(x):
        s = x.shape
        return torch.cat([x.new_zeros((s[0], 1) + s[2:]), torch.repeat_interleave(x, 2, dim=1)[:, :-1]],
                         dim=1).view(s[0], s[1], 2 * s[2], *s[3:])

    def _round(self, Q, K, V, mask, temp):
        N, L, H, E = Q.shape
        planes = Q.new_empty(self.bits, E)
        nn.init.normal_(planes)
        projected = torch.einsum("nlhe,be->nlhb", K, planes)
        hashes = torch.argmax(torch.cat([projected, -projected], dim=-1), dim=-1)
        group = torch.argsort(hashes, dim=1)
        invert_group = torch.empty_like(group)
        bi = torch.arange(N).view(N, 1, 1)
        si = torch.arange(L).view(1, L, 1)
        hi = torch.arange(H).view(1, 1, H)
        invert_group[bi, group, hi] = si
        group = group.view(N, -1, self.chunk_size, H)
        invert_group = invert_group.view(N, -1, self.chunk_size, H)
        bi = bi.unsqueeze(1)
        hi = hi.unsqueeze(0)
        Qg, Kg, Vg = Q[bi, group, hi], K[bi, group, hi], V[bi, group, hi]
        mg = mask[bi.unsqueeze(1), group.unsqueeze(3), self._look_back(group).unsqueeze(2)]
        mg[:, 0, :, :Qg.shape[2]] = float("-inf")
        infmask = torch.all(torch.isinf(mg), dim=3, keepdim=True)
        mg = mg.masked_fill(infmask, 0.)
        Kg = self._look_back(Kg)
        QQ = torch.einsum("nblhe,nbshe->nbhls", Qg, Kg)
        QQ = QQ + mg.permute(0, 1, 4, 2, 3)
        A = torch.softmax(temp * QQ, dim=-1)
        Vg = self._look_back(Vg)
        Vn = torch.einsum("nbhls,nbshe->nblhe", A, Vg).contiguous().view(N, -1, H, E)
        return Vn[bi, invert_group, hi].contiguous().view(N, L, H, E)

    def forward(self, queries, keys, values, m):
        N, L, H, E = queries.shape
        temp = self.softmax_temp or 1. / math.sqrt(E)
        mask = m.key_add.unsqueeze(1).expand(N, L, L)
        if self.masked:
            mask = mask + torch.eye(L).unsqueeze(0) * float(-1e9)
        if m.attn_add is not None:
            mask = mask + m.attn_add.unsqueeze(0)
        K = self._normalize(queries)
        K = K * m.key_float.view(N, L, 1, 1)
        out = 0
        for _ in range(self.rounds):
            out = out + (1 / self.rounds) * self._round(queries, K, values, mask, temp)
        return out


class AttentionLayer(nn.Module):
    def __init__(self, attention, d_model, n_heads, d_keys=None, d_values=None, d_model_keys=None, **_):
        super().__init__()
        d_keys = d_keys or d_model // n_heads
        d_values = d_values or d_model // n_heads
        d_model_keys = d_model_keys or d_model
        self.inner_attention = attention
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model_keys, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model_keys, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, queries, keys, values, m):
        N, L, _ = queries.shape
        S = keys.shape[1]
        H = self.n_heads
        queries = self.query_projection(queries).view(N, L, H, -1)
        keys = self.key_projection(keys).view(N, S, H, -1)
        values = self.value_projection(values).view(N, S, H, -1)
        new_values = self.inner_attention(queries, keys, values, m).view(N, L, -1)
        return self.out_projection(new_values)


INNER = {
    "full": FullAttention, "linear": LinearAttention, "causal_linear": CausalLinearAttention,
    "local": LocalAttention, "exact_topk": ExactTopKAttention, "clustered": ClusteredAttention,
    "improved_clustered": ImprovedClusteredAttention,
    "improved_clustered_causal": ImprovedClusteredCausalAttention, "reformer": ReformerAttention,
    "aft_full": AFTFullAttention, "aft_simple": AFTSimpleAttention,
}


def inner_from_spec(spec):
    spec = dict(spec)
    t = spec.pop("type")
    if t == "conditional_full":
        return ConditionalFullAttention(inner_from_spec(spec.pop("other_attention")), **spec)
    return INNER[t](**spec)


# ---------------------------------------------------------------------------
# area-attention (AreaAttention, MultiHeadAreaAttention)

class AreaAttention(nn.Module):
    def __init__(self, key_query_size, area_key_mode='mean', area_value_mode='sum', max_area_height=1,
                 max_area_width=1, memory_height=1, memory_width=1, dropout_rate=0.0, top_k_areas=0, **_):
        super().__init__()
        self.area_key_mode, self.area_value_mode = area_key_mode, area_value_mode
        self.max_area_height, self.max_area_width = max_area_height, max_area_width
        self.memory_height, self.memory_width = memory_height, memory_width
        self.top_k_areas = top_k_areas
        self.area_temperature = np.power(key_query_size, 0.5)
        if area_key_mode in ['concat', 'max_concat', 'sum', 'sample_concat', 'sample_sum']:
            self.area_height_embedding = nn.Embedding(max_area_height, key_query_size // 2)
            self.area_width_embedding = nn.Embedding(max_area_width, key_query_size // 2)
            fs = {'concat': 3, 'max_concat': 2, 'sum': 1, 'sample_concat': 2, 'sample_sum': 1}[area_key_mode]
            self.area_key_embedding = nn.Sequential(nn.Linear(fs * key_query_size, key_query_size),
                                                    nn.ReLU(inplace=True),
                                                    nn.Linear(key_query_size, key_query_size))

    def forward(self, q, k, v):
        k_area = self._key(k)
        if self.area_value_mode == 'mean':
            v_area = self._feat(v)[0]
        elif self.area_value_mode == 'max':
            v_area = self._pool(v)
        else:
            v_area = self._feat(v)[2]
        logits = torch.matmul(q, k_area.transpose(1, 2)) / self.area_temperature
        w = logits.softmax(dim=-1)
        if self.top_k_areas > 0:
            top_k = min(w.size(-1), self.top_k_areas)
            tw, _ = w.topk(top_k)
            mv, _ = torch.min(tw, dim=-1, keepdim=True)
            w = torch.where(w >= mv, w, torch.zeros_like(w))
            w /= w.sum(dim=-1, keepdim=True)
        return torch.matmul(w, v_area)

    def _key(self, f):
        mean, std, _, hs, ws = self._feat(f)
        mode = self.area_key_mode
        if mode in ('mean', 'sample'):
            return mean
        if mode == 'max':
            return self._pool(f)
        se = torch.cat([self.area_height_embedding((hs[:, :, 0] - 1).long()),
                        self.area_width_embedding((ws[:, :, 0] - 1).long())], dim=-1)
        if mode == 'concat':
            x = torch.cat([mean, std, se], dim=-1)
        elif mode == 'max_concat':
            x = torch.cat([self._pool(f), se], dim=-1)
        elif mode == 'sum':
            x = se + mean + std
        elif mode == 'sample_concat':
            x = torch.cat([mean, se], dim=-1)
        else:
            x = mean + se
        return self.area_key_embedding(x)

    def _feat(self, f, eps=1e-6):
        s, hs, ws = self._sum(f)
        s2, _, _ = self._sum(f.square())
        size = (hs * ws).float()
        mean = s / size
        var = s2 / size - mean.square()
        return mean, (var.abs() + eps).sqrt(), s, hs, ws

    def _sum(self, f):
        B, N, C = f.size()
        f2 = f.reshape(B, self.memory_height, self.memory_width, C)
        p = F.pad(f2.cumsum(dim=-2).cumsum(dim=-3), pad=[0, 0, 1, 0, 1, 0])
        d, g, h, v, Hs, Ws = [], [], [], [], [], []
        size = torch.ones_like(p[:, :, :, 0], dtype=torch.int32)
        for ah in range(self.max_area_height):
            for aw in range(self.max_area_width):
                d.append(p[:, ah + 1:, aw + 1:, :].reshape(B, -1, C))
                g.append(p[:, :-ah - 1, :-aw - 1, :].reshape(B, -1, C))
                h.append(p[:, ah + 1:, :-aw - 1, :].reshape(B, -1, C))
                v.append(p[:, :-ah - 1, aw + 1:, :].reshape(B, -1, C))
                Hs.append((size[:, ah + 1:, aw + 1:] * (ah + 1)).reshape(B, -1))
                Ws.append((size[:, ah + 1:, aw + 1:] * (aw + 1)).reshape(B, -1))
        s = torch.sub(torch.cat(d, 1) + torch.cat(g, 1), torch.cat(v, 1) + torch.cat(h, 1))
        return s, torch.cat(Hs, 1).unsqueeze(2), torch.cat(Ws, 1).unsqueeze(2)

    def _pool(self, f):
        B, N, C = f.size()
        f2 = f.reshape(B, self.memory_height, self.memory_width, C)
        return torch.cat([self._one(f2, aw + 1, ah + 1) for ah in range(self.max_area_height)
                          for aw in range(self.max_area_width)], 1)

    @staticmethod
    def _one(f2, aw, ah):
        B, Hh, Ww, C = f2.size()
        fl = []
        for ys in range(ah):
            ih = max(Hh - ah + 1 + ys, 0)
            for xs in range(aw):
                iw = max(Ww - aw + 1 + xs, 0)
                fl.append(f2[:, ys:ih, xs:iw, :].reshape(B, -1, C, 1))
        return torch.max(torch.cat(fl, 3), dim=3).values


class MultiHeadAreaAttention(nn.Module):
    def __init__(self, area_attention, num_heads, key_query_size, key_query_size_hidden, value_size,
                 value_size_hidden):
        super().__init__()
        self.area_attention = area_attention
        self.num_heads = num_heads
        self.value_size_hidden = value_size_hidden
        self.query_projection = nn.Linear(key_query_size, num_heads * key_query_size_hidden)
        self.key_projection = nn.Linear(key_query_size, num_heads * key_query_size_hidden)
        self.value_projection = nn.Linear(value_size, num_heads * value_size_hidden)
        self.output_projection = nn.Linear(num_heads * value_size_hidden, value_size)

    def forward(self, q, k, v):
        B, Nq, _ = q.size()
        Nk = k.size(1)
        h = self.num_heads
        q = self.query_projection(q).view(B, Nq, h, -1).permute(0, 2, 1, 3).contiguous().flatten(0, 1)
        k = self.key_projection(k).view(B, Nk, h, -1).permute(0, 2, 1, 3).contiguous().flatten(0, 1)
        v = self.value_projection(v).view(B, Nk, h, -1).permute(0, 2, 1, 3).contiguous().flatten(0, 1)
        a = self.area_attention(q, k, v).view(B, h, Nq, self.value_size_hidden)
        a = a.permute(0, 2, 1, 3).contiguous().flatten(-2, -1)
        return self.output_projection(a)


# ---------------------------------------------------------------------------
# axial-attention 0.6.1

def calc_perms(nd, emb):
    tot = nd + 2
    emb = emb if emb > 0 else emb + tot
    out = []
    for a in [i for i in range(1, tot) if i != emb]:
        rest = set(range(tot)) - {a, emb}
        out.append([*rest, a, emb])
    return out


class ChanLayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x):
        std = torch.var(x, dim=1, unbiased=False, keepdim=True).sqrt()
        mean = torch.mean(x, dim=1, keepdim=True)
        return (x - mean) / (std + self.eps) * self.g + self.b


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class _Seq(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = blocks

    def forward(self, x):
        for f, g in self.blocks:
            x = x + f(x)
            x = x + g(x)
        return x


class _Det(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


class _RevBlock(nn.Module):
    def __init__(self, f, g):
        super().__init__()
        self.f = _Det(f)
        self.g = _Det(g)

    def forward(self, x):
        x1, x2 = torch.chunk(x, 2, dim=1)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=1)


class _RevSeq(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList([_RevBlock(f, g) for (f, g) in blocks])

    def forward(self, x):
        x = torch.cat((x, x), dim=1)
        for b in self.blocks:
            x = b(x)
        return torch.stack(x.chunk(2, dim=1)).mean(dim=0)


class PermuteToFrom(nn.Module):
    def __init__(self, perm, fn):
        super().__init__()
        self.fn = fn
        self.perm = perm
        self.inv = sorted(range(len(perm)), key=lambda i: perm[i])

    def forward(self, x):
        a = x.permute(*self.perm).contiguous()
        sh = a.shape
        a = self.fn(a.reshape(-1, sh[-2], sh[-1])).reshape(*sh)
        return a.permute(*self.inv).contiguous()


class AxialPositionalEmbedding(nn.Module):
    def __init__(self, dim, shape, emb_dim_index=1):
        super().__init__()
        tot = len(shape) + 2
        ax = [i for i in range(1, tot) if i != emb_dim_index]
        self.num_axials = len(shape)
        for i, (ad, ai) in enumerate(zip(shape, ax)):
            s = [1] * tot
            s[emb_dim_index] = dim
            s[ai] = ad
            setattr(self, f'param_{i}', nn.Parameter(torch.randn(*s)))

    def forward(self, x):
        for i in range(self.num_axials):
            x = x + getattr(self, f'param_{i}')
        return x


class AxialSelfAttention(nn.Module):
    def __init__(self, dim, heads, dim_heads=None):
        super().__init__()
        self.dim_heads = dim // heads if dim_heads is None else dim_heads
        hid = self.dim_heads * heads
        self.heads = heads
        self.to_q = nn.Linear(dim, hid, bias=False)
        self.to_kv = nn.Linear(dim, 2 * hid, bias=False)
        self.to_out = nn.Linear(hid, dim)

    def forward(self, x):
        q, k, v = (self.to_q(x), *self.to_kv(x).chunk(2, dim=-1))
        b, t, d, h, e = *q.shape, self.heads, self.dim_heads

        def mh(z):
            return z.reshape(b, -1, h, e).transpose(1, 2).reshape(b * h, -1, e)
        q, k, v = map(mh, (q, k, v))
        dots = torch.einsum('bie,bje->bij', q, k) * (e ** -0.5)
        out = torch.einsum('bij,bje->bie', dots.softmax(dim=-1), v)
        out = out.reshape(b, h, -1, e).transpose(1, 2).reshape(b, -1, d)
        return self.to_out(out)


class AxialAttention(nn.Module):
    def __init__(self, dim, num_dimensions=2, heads=8, dim_heads=None, dim_index=-1, sum_axial_out=True):
        super().__init__()
        self.total = num_dimensions + 2
        self.dim_index = dim_index if dim_index > 0 else dim_index + self.total
        self.axial_attentions = nn.ModuleList([PermuteToFrom(p, AxialSelfAttention(dim, heads, dim_heads))
                                               for p in calc_perms(num_dimensions, dim_index)])
        self.sum_axial_out = sum_axial_out

    def forward(self, x):
        if self.sum_axial_out:
            return sum(map(lambda a: a(x), self.axial_attentions))
        for a in self.axial_attentions:
            x = a(x)
        return x


class AxialImageTransformer(nn.Module):
    def __init__(self, dim, depth, heads=8, dim_heads=None, dim_index=1, reversible=True,
                 axial_pos_emb_shape=None):
        super().__init__()
        perms = calc_perms(2, dim_index)

        def ff():
            return nn.Sequential(ChanLayerNorm(dim), nn.Conv2d(dim, dim * 4, 3, padding=1),
                                 nn.LeakyReLU(inplace=True), nn.Conv2d(dim * 4, dim, 3, padding=1))
        self.pos_emb = AxialPositionalEmbedding(dim, axial_pos_emb_shape, dim_index) \
            if axial_pos_emb_shape is not None else nn.Identity()
        layers = nn.ModuleList([])
        for _ in range(depth):
            layers.append(nn.ModuleList([PermuteToFrom(p, PreNorm(dim, AxialSelfAttention(dim, heads, dim_heads)))
                                         for p in perms]))
            layers.append(nn.ModuleList([ff(), ff()]))
        self.layers = (_RevSeq if reversible else _Seq)(layers)

    def forward(self, x):
        return self.layers(self.pos_emb(x))


# ---------------------------------------------------------------------------
# compositional-attention-pytorch (einops rearranges written as reshapes)

class CompositionalAttention(nn.Module):
    def __init__(self, dim, dim_head=64, num_searches=8, num_retrievals=2, dropout=0.0, prenorm=False,
                 causal=False):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if prenorm else nn.Identity()
        self.scale = dim_head ** -0.5
        self.dh, self.s, self.r, self.causal = dim_head, num_searches, num_retrievals, causal
        self.to_searches_queries = nn.Linear(dim, dim_head * num_searches, bias=False)
        self.to_searches_keys = nn.Linear(dim, dim_head * num_searches, bias=False)
        self.to_retrieval_values = nn.Linear(dim, dim_head * num_retrievals, bias=False)
        self.to_retrieval_queries = nn.Linear(dim, dim_head * num_searches, bias=False)
        self.to_retrieval_keys = nn.Linear(dim_head, dim_head, bias=False)
        self.to_out = nn.Linear(dim_head * num_searches, dim, bias=False)

    def forward(self, x, mask=None):
        b, n, _ = x.shape
        s, r, dh = self.s, self.r, self.dh
        x = self.norm(x)
        sq, sk = self.to_searches_queries(x), self.to_searches_keys(x)
        sq, sk = [t.reshape(b, n, s, dh).permute(0, 2, 1, 3) for t in (sq, sk)]
        sq = sq * self.scale
        sim = einsum('b s i d, b s j d -> b s i j', sq, sk)
        mask_value = -torch.finfo(sim.dtype).max
        if mask is not None:
            sim = sim.masked_fill(~mask[:, None, None, :], mask_value)
        if self.causal:
            i, j = sim.shape[-2:]
            sim = sim.masked_fill(torch.ones((i, j), dtype=torch.bool).triu(j - i + 1), mask_value)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        rv = self.to_retrieval_values(x).reshape(b, n, r, dh).permute(0, 2, 1, 3)
        retrieved = einsum('b s i j, b r j d -> b s r i d', attn, rv)
        rq = self.to_retrieval_queries(x).reshape(b, n, s, dh).permute(0, 2, 1, 3) * self.scale
        rk = self.to_retrieval_keys(retrieved)
        rs = einsum('b s n d , b s r n d -> b s n r', rq, rk)
        rs = rs - rs.amax(dim=-1, keepdim=True).detach()
        ra = rs.softmax(dim=-1)
        out = einsum('b s n r, b s r n d -> b s n d', ra, retrieved)
        out = out.permute(0, 2, 1, 3).reshape(b, n, s * dh)
        return self.to_out(out)


# ---------------------------------------------------------------------------
# linear-attention-transformer: SelfAttention (non-causal and causal linear
# heads, n_local_attn_heads = 0) and ImageLinearAttention

PSI = {"elu1": lambda x: F.elu(x) + 1, "relu": F.relu, "exp": torch.exp, "softplus": F.softplus,
       "identity": lambda x: x}


def _linear_attn(q, k, v, kv_mask=None, one_kv_head=False):
    dim = q.shape[-1]
    q, k = q * dim ** -0.25, k * dim ** -0.25
    if kv_mask is not None:
        m = kv_mask[:, :, None] if one_kv_head else kv_mask[:, None, :, None]
        k = k.masked_fill(~m, -torch.finfo(q.dtype).max)
        v = v.masked_fill(~m, 0.)
    q = q.softmax(dim=-1)
    k = k.softmax(dim=-2)
    ctx = einsum('bnd,bne->bde' if one_kv_head else 'bhnd,bhne->bhde', k, v)
    return einsum('bhnd,bde->bhne' if one_kv_head else 'bhnd,bhde->bhne', q, ctx)


def _causal_linear_attn(q, k, v, kv_mask=None, psi=None, one_kv_head=False, bucket_size=1):
    b, h, n, e = q.shape
    q, k = q * e ** -0.25, k * e ** -0.25
    q = q.softmax(dim=-1)
    k = psi(k)
    if kv_mask is not None:
        m = kv_mask[:, :, None] if one_kv_head else kv_mask[:, None, :, None]
        k = k.masked_fill(~m, 0.)
        v = v.masked_fill(~m, 0.)

    def bf(x):
        return x.reshape(*x.shape[:-2], -1, bucket_size, e)
    bq, bk, bv = map(bf, (q, k, v))
    bks = bk.sum(dim=-2).cumsum(dim=-2)
    ctx = einsum('bund,bune->bude' if one_kv_head else 'bhund,bhune->bhude', bk, bv).cumsum(dim=-3)
    ctx = ctx / (bks.unsqueeze(-1) + 1e-6)
    if bucket_size != 1:
        ctx = F.pad(ctx, (0, 0, 0, 0, 1, 0))
        ctx = ctx[:, :-1] if one_kv_head else ctx[:, :, :-1]
    attn = einsum('bhund,bude->bhune' if one_kv_head else 'bhund,bhude->bhune', bq, ctx)
    return attn.reshape(*q.shape)


class LinearSelfAttention(nn.Module):
    def __init__(self, dim, heads, causal=False, dim_head=None, one_kv_head=False, psi_fn="elu1",
                 blindspot_size=1, receives_context=False, **_):
        super().__init__()
        self.heads = heads
        self.dh = dim_head or dim // heads
        self.causal, self.one = causal, one_kv_head
        self.psi = PSI[psi_fn]
        self.bucket = blindspot_size
        kv = self.dh if one_kv_head else self.dh * heads
        self.to_q = nn.Linear(dim, self.dh * heads, bias=False)
        self.to_k = nn.Linear(dim, kv, bias=False)
        self.to_v = nn.Linear(dim, kv, bias=False)
        self.to_out = nn.Linear(self.dh * heads, dim)

    def forward(self, x, input_mask=None):
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        b, t, _ = q.shape

        def mh(z):
            return z.reshape(z.shape[0], z.shape[1], -1, self.dh).transpose(1, 2)
        q = mh(q)
        if not self.one:
            k, v = mh(k), mh(v)
        if self.causal:
            o = _causal_linear_attn(q, k, v, input_mask, self.psi, self.one, self.bucket)
        else:
            o = _linear_attn(q, k, v, input_mask, self.one)
        o = o.transpose(1, 2).reshape(b, t, -1)
        return self.to_out(o)


class ImageLinearAttention(nn.Module):
    def __init__(self, chan, chan_out=None, kernel_size=1, padding=0, stride=1, key_dim=64, value_dim=64,
                 heads=8, norm_queries=True):
        super().__init__()
        self.key_dim, self.value_dim, self.heads, self.norm_queries = key_dim, value_dim, heads, norm_queries
        conv = dict(kernel_size=kernel_size, padding=padding, stride=stride)
        self.to_q = nn.Conv2d(chan, key_dim * heads, **conv)
        self.to_k = nn.Conv2d(chan, key_dim * heads, **conv)
        self.to_v = nn.Conv2d(chan, value_dim * heads, **conv)
        self.to_out = nn.Conv2d(value_dim * heads, chan_out or chan, kernel_size, padding=padding)

    def forward(self, x, context=None):
        b, c, h, w = x.shape
        k_, heads = self.key_dim, self.heads
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        q, k, v = [t.reshape(b, heads, -1, h * w) for t in (q, k, v)]
        q, k = q * k_ ** -0.25, k * k_ ** -0.25
        if context is not None:
            context = context.reshape(b, c, 1, -1)
            ck, cv = self.to_k(context), self.to_v(context)
            ck, cv = [t.reshape(b, heads, k_, -1) for t in (ck, cv)]
            k = torch.cat((k, ck), dim=3)
            v = torch.cat((v, cv), dim=3)
        k = k.softmax(dim=-1)
        if self.norm_queries:
            q = q.softmax(dim=-2)
        ctx = einsum('bhdn,bhen->bhde', k, v)
        out = einsum('bhdn,bhde->bhen', q, ctx).reshape(b, -1, h, w)
        return self.to_out(out)
