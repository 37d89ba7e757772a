"""Imports the five reference libraries from their checked-out repositories and builds, for one
case row of table.py, the reference module and the call of its forward().

ATTN_REF_DIR (or --ref-dir) holds one work tree per repository, named as on GitHub:
fast-transformers, area-attention, axial-attention, compositional-attention-pytorch,
linear-attention-transformer. fast-transformers must have its CPU extensions compiled in place
(they are imported by fast_transformers.attention). shims/ stands in for the small packages that
are not available here (see README.md).
"""
import fractions
import math
import os
import sys

REPOS = ['fast-transformers', 'area-attention', 'axial-attention',
         'compositional-attention-pytorch', 'linear-attention-transformer']

_HERE = os.path.dirname(os.path.abspath(__file__))


def setup(ref_dir):
    missing = [r for r in REPOS if not os.path.isdir(os.path.join(ref_dir, r))]
    if missing:
        raise SystemExit('reference repositories missing under %s: %s' % (ref_dir, ', '.join(missing)))
    sys.path[:0] = [os.path.join(_HERE, 'shims')] + [os.path.join(ref_dir, r) for r in REPOS]
    # linear-attention-transformer @1033093 imports fractions.gcd, removed in Python 3.9
    fractions.gcd = math.gcd


# ---- fast-transformers ----------------------------------------------------------------------

def _ft_attention(cfg, typ):
    import fast_transformers.attention as A
    c = {k: v for k, v in cfg.items() if k != 'type'}
    if typ == 'full':
        return A.FullAttention(c['softmax_temp'], c['attention_dropout'])
    if typ == 'linear':
        return A.LinearAttention(c['query_dimensions'], c['feature_map'], c['eps'])
    if typ == 'causal_linear':
        return A.CausalLinearAttention(c['query_dimensions'], c['feature_map'], c['eps'])
    if typ == 'local':
        return A.LocalAttention(c['local_context'], c['softmax_temp'], c['attention_dropout'])
    if typ == 'exact_topk':
        return A.ExactTopKAttention(c['topk'], c['softmax_temp'], c['attention_dropout'])
    if typ == 'conditional_full':
        other = _ft_attention(c['other_attention'], c['other_attention']['type'])
        return A.ConditionalFullAttention(other, c['length_limit'], c['softmax_temp'],
                                          c['attention_dropout'])
    if typ == 'aft_full':
        return A.AFTFullAttention(c['max_sequence_length'], c['aft_parameterization'])
    if typ == 'aft_simple':
        return A.AFTSimpleAttention()
    if typ == 'clustered':
        return A.ClusteredAttention(c['clusters'], c['iterations'], c['bits'], c['hash_bias'],
                                    c['softmax_temp'], c['attention_dropout'])
    if typ == 'improved_clustered':
        return A.ImprovedClusteredAttention(c['clusters'], c['iterations'], c['bits'], c['hash_bias'],
                                            c['topk'], c['softmax_temp'], c['attention_dropout'])
    if typ == 'improved_clustered_causal':
        return A.ImprovedClusteredCausalAttention(c['clusters'], c['iterations'], c['bits'],
                                                  c['hash_bias'], c['topk'], c['softmax_temp'],
                                                  c['attention_dropout'])
    if typ == 'reformer':
        return A.ReformerAttention(c['chunk_size'], c['bits'], c['rounds'], c['masked'],
                                   c['softmax_temp'], c['attention_dropout'])
    if typ == 'attention_layer':
        inner = _ft_attention(c['attention'], c['attention']['type'])
        return A.AttentionLayer(inner, c['d_model'], c['n_heads'], c['d_keys'], c['d_values'],
                                c['d_model_keys'])
    raise KeyError(typ)


def _ft_call(module, x, masks):
    """forward(queries, keys, values, attn_mask, query_lengths, key_lengths) with mask objects."""
    import torch
    from fast_transformers.masking import FullMask, LengthMask, TriangularCausalMask
    q, k, v = x
    N, L, S = q.shape[0], q.shape[1], k.shape[1]
    am = masks.get('attn_mask')
    if am is None:
        attn = FullMask(L, S)
    elif am[0] == 'causal':
        attn = TriangularCausalMask(L)
    else:
        attn = FullMask(am[1])
    ql, kl = masks.get('query_lengths'), masks.get('key_lengths')
    qlm = LengthMask(ql[1], max_len=L) if ql is not None else LengthMask(q.new_full((N,), L, dtype=torch.int64), max_len=L)
    klm = LengthMask(kl[1], max_len=S) if kl is not None else LengthMask(q.new_full((N,), S, dtype=torch.int64), max_len=S)
    return module(q, k, v, attn, qlm, klm)


# ---- area-attention -------------------------------------------------------------------------

def _area(cfg, typ):
    from area_attention import AreaAttention, MultiHeadAreaAttention
    if typ == 'area':
        return AreaAttention(**cfg)
    c = dict(cfg)
    area = AreaAttention(**c.pop('area_attention'))
    return MultiHeadAreaAttention(area, **c)


# ---- axial-attention ------------------------------------------------------------------------

def _axial(cfg, typ):
    from axial_attention import AxialAttention, AxialImageTransformer, AxialPositionalEmbedding
    if typ == 'axial':
        return AxialAttention(**cfg)
    if typ == 'axial_image_transformer':
        c = dict(cfg)
        if c['axial_pos_emb_shape'] is not None:
            c['axial_pos_emb_shape'] = tuple(c['axial_pos_emb_shape'])
        return AxialImageTransformer(**c)
    return AxialPositionalEmbedding(cfg['dim'], tuple(cfg['shape']), cfg['emb_dim_index'])


# ---- compositional-attention-pytorch, linear-attention-transformer --------------------------

def _compositional(cfg, typ):
    from compositional_attention_pytorch import CompositionalAttention
    return CompositionalAttention(**cfg)


def _linear_image(cfg, typ):
    from linear_attention_transformer.images import ImageLinearAttention
    return ImageLinearAttention(**cfg)


def _linear_self(cfg, typ):
    import torch.nn.functional as F
    from linear_attention_transformer import linear_attention_transformer as LAT
    c = dict(cfg)
    c['psi_fn'] = {'elu1': LAT.DEFAULT_PSI, 'relu': F.relu}[c['psi_fn']]
    return LAT.SelfAttention(**c)


def _plain_call(module, x, masks):
    """forward(*inputs, **optional) with optional BOOL masks / tensors passed by keyword."""
    return module(*x, **{k: v[1] for k, v in masks.items()})


FT_TYPES = ('full', 'linear', 'causal_linear', 'local', 'exact_topk', 'conditional_full',
            'aft_full', 'aft_simple', 'attention_layer', 'clustered', 'improved_clustered', 'improved_clustered_causal', 'reformer')

# type -> (constructor, forward call)
BUILDERS = {t: (_ft_attention, _ft_call) for t in FT_TYPES}
BUILDERS.update({
    'area': (_area, _plain_call),
    'multi_head_area': (_area, _plain_call),
    'axial': (_axial, _plain_call),
    'axial_image_transformer': (_axial, _plain_call),
    'axial_positional_embedding': (_axial, _plain_call),
    'compositional': (_compositional, _plain_call),
    'linear_image': (_linear_image, _plain_call),
    'linear_self': (_linear_self, _plain_call),
})


def perturb_norms(module):
    """LayerNorm / ChanLayerNorm affine parameters += 0.2 * randn, in module order."""
    import torch
    for m in module.modules():
        if isinstance(m, torch.nn.LayerNorm) or type(m).__name__ == 'ChanLayerNorm':
            for p in m.parameters(recurse=False):
                p.data.add_(0.2 * torch.randn(p.shape))


def redraw_uv(module):
    """AFTFullAttention: u, v re-drawn from N(0,1) (the 0.01*randn init hides the position bias)."""
    import torch
    module.u.data = torch.randn(module.u.shape)
    module.v.data = torch.randn(module.v.shape)


POST = {'perturb_norms': perturb_norms, 'redraw_uv': redraw_uv}


# ---- attention maps (rows with 'maps': True) ------------------------------------------------
# Each capture runs the forward once with the reference's own weights hooked and returns
# (out, [(attnd output name, array)]). The weights are taken where the reference forms them:
# fast-transformers' FullAttention dispatches AttentionEvent(A); its other modules and the
# area/compositional modules pass the final weights through a Dropout (identity in eval()),
# whose forward hook sees them; axial-attention's SelfAttention calls Tensor.softmax, which is
# wrapped for the call.

def _dropout_hooks(modules):
    got = {id(m): [] for m in modules}
    handles = [m.register_forward_hook(lambda mod, i, o: got[id(mod)].append(o.detach().clone()))
               for m in modules]
    return got, handles


def _maps_full(module, x, masks, call):
    from fast_transformers.attention import FullAttention
    from fast_transformers.events import AttentionEvent
    full = [m for m in module.modules() if isinstance(m, FullAttention)]
    seen = []
    for f in full:
        f.event_dispatcher.listen(AttentionEvent, lambda ev: seen.append(ev.attention_matrix.detach().clone()))
    try:
        out = call(module, x, masks)
    finally:
        for f in full:
            f.event_dispatcher.clear()
    assert len(seen) == 1, 'expected one AttentionEvent, got %d' % len(seen)
    return out, [('attention', seen[0].numpy())]


def _maps_dropout_qkv(module, x, masks, call):
    """LocalAttention / ExactTopKAttention: A = dropout(softmax(...)); local's A is the band
    (N,H,L,w), slot k of query l being key l - w//2 + k, made dense over S here."""
    import numpy as np
    from fast_transformers.attention import LocalAttention
    got, hs = _dropout_hooks([module.dropout])
    try:
        out = call(module, x, masks)
    finally:
        for h in hs:
            h.remove()
    (A,) = got[id(module.dropout)]
    A = A.numpy()
    if isinstance(module, LocalAttention):
        N, H, L, w = A.shape
        S = x[1].shape[1]
        dense = np.zeros((N, H, L, S), dtype=np.float32)
        for l in range(L):
            for s in range(max(0, l - w // 2), min(S, l + (w + 1) // 2)):
                dense[:, :, l, s] = A[:, :, l, s - l + w // 2]
        A = dense
    return out, [('attention', A)]


def _maps_attention_layer(module, x, masks, call):
    """The inner attention's maps over the projected heads."""
    inner = module.inner_attention
    from fast_transformers.attention import FullAttention, LinearAttention, CausalLinearAttention
    if isinstance(inner, FullAttention):
        return _maps_full(module, x, masks, call)
    if isinstance(inner, (LinearAttention, CausalLinearAttention)):
        return _maps_linear(inner, x, masks, lambda _m, xx, mm: call(module, xx, mm))
    got, hs = _dropout_hooks([inner.dropout])
    try:
        out = call(module, x, masks)
    finally:
        for h in hs:
            h.remove()
    (A,) = got[id(inner.dropout)]
    return out, [('attention', A.numpy())]


def _area_geometry(area, k):
    """(A, 4) rows (top, left, height, width): heights and widths are the reference's own
    (_basic_pool's area_heights/area_widths), top-left the corner order it pools in (per shape,
    row-major), checked against its shape order."""
    import numpy as np
    _, hs, ws = area._basic_pool(k)
    hs = hs[0, :, 0].numpy().astype(np.int64)
    ws = ws[0, :, 0].numpy().astype(np.int64)
    rows = []
    for h in range(1, area.max_area_height + 1):
        for w in range(1, area.max_area_width + 1):
            for t in range(area.memory_height - h + 1):
                for l in range(area.memory_width - w + 1):
                    rows.append((t, l, h, w))
    geo = np.array(rows, dtype=np.float32)
    assert len(rows) == len(hs) and (geo[:, 2] == hs).all() and (geo[:, 3] == ws).all(), 'area order'
    return geo


def _maps_area(module, x, masks, call):
    from area_attention import AreaAttention
    area = module if isinstance(module, AreaAttention) else module.area_attention
    got, hs = _dropout_hooks([area.dropout])
    try:
        out = call(module, x, masks)
    finally:
        for h in hs:
            h.remove()
    (A,) = got[id(area.dropout)]
    if area is not module:  # (B*heads, Nq, A) -> (B, heads, Nq, A)
        A = A.reshape(x[0].shape[0], module.num_heads, *A.shape[1:])
        k = module.key_projection(x[1])[..., :module.key_query_size_hidden]
    else:
        k = x[1]
    return out, [('attention', A.numpy()), ('attention_areas', _area_geometry(area, k))]


def _maps_axial(module, x, masks, call):
    """Every Tensor.softmax call of the forward, in order: AxialAttention's axes in module
    order (axial_attentions), AxialImageTransformer's per layer (f of the pair: axis 1, g: axis
    2), each (b*heads, t, t) with b the permuted tensor's leading dims -> (rest..., heads, t, t)."""
    import torch
    from axial_attention import AxialAttention
    seen = []
    orig = torch.Tensor.softmax

    def softmax(self, *a, **kw):
        r = orig(self, *a, **kw)
        seen.append(r.detach().clone())
        return r
    torch.Tensor.softmax = softmax
    try:
        out = call(module, x, masks)
    finally:
        torch.Tensor.softmax = orig
    # the PermuteToFrom modules in module order: their softmax calls come in the same order
    # (AxialImageTransformer: axis 1 then axis 2 of each layer)
    ptfs = [m for m in module.modules() if type(m).__name__ == 'PermuteToFrom']
    assert len(seen) == len(ptfs), (len(seen), len(ptfs))
    shape = list(x[0].shape) if isinstance(module, AxialAttention) else list(out.shape)
    maps = []
    for p, a in zip(ptfs, seen):
        sa = p.fn if hasattr(p.fn, 'heads') else p.fn.fn  # SelfAttention, or PreNorm(SelfAttention)
        rest = [shape[d] for d in p.permutation[:-2]]
        t = shape[p.permutation[-2]]
        maps.append(a.reshape(*rest, sa.heads, t, t).numpy())
    if isinstance(module, AxialAttention):
        return out, [('attention_axis%d' % (i + 1), m) for i, m in enumerate(maps)]
    import numpy as np
    return out, [('attention_axis%d' % (k + 1), np.stack(maps[k::2])) for k in range(2)]


def _maps_compositional(module, x, masks, call):
    got, hs = _dropout_hooks([module.search_dropout, module.retrieval_dropout])
    try:
        out = call(module, x, masks)
    finally:
        for h in hs:
            h.remove()
    (s,) = got[id(module.search_dropout)]
    (r,) = got[id(module.retrieval_dropout)]
    return out, [('attention', s.numpy()), ('attention_retrieval', r.numpy())]


def _maps_linear(module, x, masks, call):
    """LinearAttention / CausalLinearAttention never form their matrix: the map is the one
    their forward implies, from the feature maps it applies (forward_queries / forward_keys
    wrapped to record them) and its own normaliser: A = Q K^T * Z with Z = 1/(Q . sum_s K
    + eps) (causal: cumulative sums, s <= l, and the first L keys when L < S). Checked:
    A V is the reference's output."""
    seen = {}
    fm = module.feature_map
    fq, fk, fwd = fm.forward_queries, fm.forward_keys, module.forward
    fm.forward_queries = lambda t: seen.setdefault('q', fq(t))
    fm.forward_keys = lambda t: seen.setdefault('k', fk(t))

    def forward(queries, keys, values, attn_mask, query_lengths, key_lengths):
        seen['v'], seen['kl'] = values, key_lengths.lengths
        seen['out'] = fwd(queries, keys, values, attn_mask, query_lengths, key_lengths)
        return seen['out']
    module.forward = forward  # the module's own call, also as an AttentionLayer's inner attention
    try:
        out = call(module, x, masks)
    finally:
        del fm.forward_queries, fm.forward_keys, module.forward
    return out, [('attention', _linear_matrix(module, seen))]


def _linear_matrix(module, seen):
    import numpy as np
    import torch
    from fast_transformers.attention import CausalLinearAttention
    Q, K = seen['q'], seen['k']
    N, L, S = Q.shape[0], Q.shape[1], K.shape[1]
    K = K * (torch.arange(S)[None, :] < seen['kl'][:, None]).float()[:, :, None, None]
    A = torch.einsum('nlhd,nshd->nhls', Q, K)
    if isinstance(module, CausalLinearAttention):
        Su = min(L, S)
        A = A[..., :Su].tril()
        A = torch.nn.functional.pad(A, (0, S - Su))
    A = A / (A.sum(-1, keepdim=True) + module.eps)
    check = torch.einsum('nhls,nshd->nlhd', A, seen['v'])
    assert np.allclose(check.numpy(), seen['out'].numpy(), rtol=1e-4, atol=1e-5), 'A V is not the output'
    return A.numpy()


def _maps_linear_self(module, x, masks, call):
    """linear-attention-transformer's SelfAttention never forms its matrix: the map is the one
    its global attention (linear_attn / causal_linear_attn, wrapped to record its q, k, v and
    kv_mask before they are masked in place) implies, redone with its own steps: q and k
    scaled by e ** -0.25, q.softmax(-1); non-causal: k filled with -finfo.max where masked,
    k.softmax(-2), A = q k^T; causal: psi(k) with masked rows 0, each feature divided by its
    running sum over the buckets the query reads (safe_div's + 1e-6; blindspot_size > 1: the
    buckets before its own, none for the first). Masked keys 0 (their values are 0).
    Checked: A v is the global attention's output (before to_out)."""
    import numpy as np
    import torch
    seen = {}
    fn = module.global_attn_fn

    def wrapped(q, k, v, kv_mask=None, one_kv_head=False):
        seen.update(q=q.clone(), k=k.clone(), v=v.clone(), mask=kv_mask, one=one_kv_head)
        seen['out'] = fn(q, k, v, kv_mask=kv_mask, one_kv_head=one_kv_head)
        return seen['out']
    module.global_attn_fn = wrapped
    try:
        out = call(module, x, masks)
    finally:
        module.global_attn_fn = fn
    q, k, v, mask = seen['q'].double(), seen['k'].double(), seen['v'].double(), seen['mask']
    if seen['one']:
        k, v = k[:, None], v[:, None]
    b, h, n, e = q.shape
    S = k.shape[2]
    q, k = q * e ** -0.25, k * e ** -0.25
    q = q.softmax(dim=-1)
    keep = torch.ones(b, 1, S, 1, dtype=torch.bool) if mask is None else mask[:, None, :, None]
    causal = isinstance(fn, __import__('functools').partial)
    if not causal:
        k = k.masked_fill(~keep, -torch.finfo(torch.float32).max).softmax(dim=-2)
        A = torch.einsum('bhnd,bhsd->bhns', q, k) * keep[..., 0][:, :, None, :]
    else:
        bs = fn.keywords['bucket_size']
        k = fn.keywords['psi'](k).masked_fill(~keep, 0.)
        U = n // bs
        ksum = k.reshape(b, k.shape[1], U, bs, e).sum(-2).cumsum(-2) + 1e-6  # (b,h,U,e)
        A = torch.zeros(b, h, n, S, dtype=torch.float64)
        for u in range(U):
            src = u if bs == 1 else u - 1
            if src < 0:
                continue
            kd = k[:, :, :(src + 1) * bs] / ksum[:, :, src:src + 1]
            A[:, :, u * bs:(u + 1) * bs, :(src + 1) * bs] = torch.einsum(
                'bhnd,bhsd->bhns', q[:, :, u * bs:(u + 1) * bs], kd)
    check = torch.einsum('bhns,bhsd->bhnd', A, v.expand(b, h, S, v.shape[-1]))
    assert np.allclose(check.float().numpy(), seen['out'].numpy(), rtol=1e-4, atol=1e-5), 'A v is not the output'
    return out, [('attention', A.float().numpy())]


def _maps_clustered(module, x, masks, call):
    """ClusteredAttention / ImprovedClusteredAttention: the weights each query used, from the
    reference's own: its query groups (_create_query_groups wrapped: the sorted cluster of each
    sorted position and the sort order), the Dropout its centroid weights pass through (clustered:
    softmax over the keys, (N,H,C,S); improved: first the centroid softmax with its top-k keys
    zeroed, then each sorted query's softmax on its cluster's top-k keys times the centroid's mass
    there, (N,H,L,k); causal: only the latter, future keys zeroed) and the top-k key indices
    (_topk_attention wrapped). Query q of cluster c gets row c, plus its own top-k part.
    Checked: A V is the output."""
    import numpy as np
    import torch
    from fast_transformers.attention import ImprovedClusteredAttention, ImprovedClusteredCausalAttention
    causal = isinstance(module, ImprovedClusteredCausalAttention)
    improved = causal or isinstance(module, ImprovedClusteredAttention)
    seen = {}
    cqg = module._create_query_groups

    def groups(Q, ql):
        g, idx = cqg(Q, ql)
        seen['clusters'], seen['order'] = g[0].clone(), idx.clone()
        return g, idx
    module._create_query_groups = groups
    if improved:
        tka = module._topk_attention

        def topk_attention(*args):
            seen['topk'] = args[7 if causal else 5].clone()
            return tka(*args)
        module._topk_attention = topk_attention
    got, hs = _dropout_hooks([module.dropout])
    try:
        out = call(module, x, masks)
    finally:
        for h in hs:
            h.remove()
        del module._create_query_groups
        if improved:
            del module._topk_attention
    As = got[id(module.dropout)]
    N, L, H = x[0].shape[0], x[0].shape[1], x[0].shape[2]
    S = x[1].shape[1]
    ql = masks['query_lengths'][1] if 'query_lengths' in masks else torch.full((N,), L)
    M = torch.zeros(N, H, L, S)
    for n in range(N):
        for h in range(H):
            for p in range(int(ql[n])):
                c, qi = int(seen['clusters'][n, h, p]), int(seen['order'][n, h, p])
                if not causal:
                    M[n, h, qi] = As[0][n, h, c]
                if improved:
                    M[n, h, qi, seen['topk'][n, h, c]] += As[-1][n, h, p]
    check = torch.einsum('nhls,nshd->nlhd', M, x[2])
    assert np.allclose(check.numpy(), out.numpy(), rtol=1e-4, atol=1e-5), 'A V is not the output'
    return out, [('attention', M.numpy())]


def _maps_reformer(module, x, masks, call):
    """ReformerAttention: the weights each query used, from the reference's own: every round's
    chunk softmax (the Dropout it passes through, (N,chunks,H,c,2c)) placed at the original
    positions of the keys of its look-back window (the round's sort order: torch.argsort
    wrapped), chunk 0's zero look-back dropped, times 1/rounds, summed over the rounds.
    Checked: A V is the output."""
    import numpy as np
    import torch
    orders = []
    argsort = torch.argsort

    def rec(*a, **k):
        r = argsort(*a, **k)
        orders.append(r.clone())
        return r
    got, hs = _dropout_hooks([module.dropout])
    torch.argsort = rec
    try:
        out = call(module, x, masks)
    finally:
        torch.argsort = argsort
        for h in hs:
            h.remove()
    As = got[id(module.dropout)]
    assert len(As) == len(orders) == module.rounds
    N, L, H = x[0].shape[0], x[0].shape[1], x[0].shape[2]
    c = module.chunk_size
    M = torch.zeros(N, H, L, L, dtype=torch.float64)
    for A, g in zip(As, orders):
        for n in range(N):
            for h in range(H):
                pos = g[n, :, h]
                for b in range(L // c):
                    keys = torch.cat([pos[(b - 1) * c:b * c] if b else torch.full((c,), -1), pos[b * c:(b + 1) * c]])
                    for i in range(c):
                        qi = int(pos[b * c + i])
                        for j in range(2 * c):
                            if keys[j] >= 0:
                                M[n, h, qi, keys[j]] += float(A[n, b, h, i, j]) / module.rounds
    check = torch.einsum('nhls,nshd->nlhd', M, x[2].double())
    assert np.allclose(check.float().numpy(), out.numpy(), rtol=1e-4, atol=1e-5), 'A V is not the output'
    return out, [('attention', M.float().numpy())]


MAPS = {
    'linear': _maps_linear,
    'causal_linear': _maps_linear,
    'full': _maps_full,
    'conditional_full': _maps_full,
    'local': _maps_dropout_qkv,
    'exact_topk': _maps_dropout_qkv,
    'attention_layer': _maps_attention_layer,
    'area': _maps_area,
    'multi_head_area': _maps_area,
    'axial': _maps_axial,
    'axial_image_transformer': _maps_axial,
    'compositional': _maps_compositional,
    'linear_self': _maps_linear_self,
    'clustered': _maps_clustered,
    'improved_clustered': _maps_clustered,
    'improved_clustered_causal': _maps_clustered,
    'reformer': _maps_reformer,
}
