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
            'aft_full', 'aft_simple', 'attention_layer')

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
