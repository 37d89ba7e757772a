"""Shim for einops_exts: rearrange_many applies the einops shim's rearrange to each tensor."""
from einops import rearrange


def rearrange_many(tensors, pattern, **axes):
    return [rearrange(t, pattern, **axes) for t in tensors]
