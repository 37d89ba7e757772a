"""Shim for einops (not packaged for Debian here): only the rearrange patterns that
compositional-attention-pytorch @e4e5954 uses, each done with the reshape/permute einops itself
performs, so the resulting views (and so the einsum inputs) are the same."""


def rearrange(t, pattern, **axes):
    if pattern in ('b n (s d) -> b s n d', 'b n (r d) -> b r n d'):
        (h,) = axes.values()
        b, n, sd = t.shape
        return t.reshape(b, n, h, sd // h).permute(0, 2, 1, 3)
    if pattern == 'b s n d -> b n (s d)':
        b, s, n, d = t.shape
        return t.permute(0, 2, 1, 3).reshape(b, n, s * d)
    if pattern == 'b j -> b 1 1 j':
        b, j = t.shape
        return t.reshape(b, 1, 1, j)
    raise NotImplementedError('einops shim: pattern %r' % pattern)
