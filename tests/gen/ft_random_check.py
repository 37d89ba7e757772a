#!/usr/bin/python3
# ft_random_check.py — cross-checks attnd's clustered, improved_clustered,
# improved_clustered_causal and reformer against an independent port of the
# fast-transformers reference (its Python modules plus the C++ CPU kernels
# hash/cluster/aggregate/clustered_sparse_product, written here with torch),
# fed with the same random draws: the port re-implements attnd's seeded
# stream (splitmix64 + xoshiro256**, Box-Muller) and its draw order.
# Hash-tie order in reformer uses a stable sort on both sides.
#   usage: /usr/bin/python3 tests/gen/ft_random_check.py [build/attn]
# Prints one line per case and exits non-zero on any mismatch.
import atexit, json, math, os, shutil, struct, subprocess, sys, tempfile
import numpy as np
import torch

ATTN = sys.argv[1] if len(sys.argv) > 1 else "build/attn"
TMP = tempfile.mkdtemp(prefix="ft_random_check.")
atexit.register(shutil.rmtree, TMP, True)
# How often the rare paths ran: empty-cluster re-draws, fully masked reformer rows.
STATS = {"empty": 0, "allinf": 0}
M64 = (1 << 64) - 1
def splitmix(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return x, z ^ (z >> 31)
def rotl(x, k): return ((x << k) | (x >> (64 - k))) & M64
class Rng:
    def __init__(self, seed):
        x = seed & M64; self.s = []
        for _ in range(4):
            x, z = splitmix(x); self.s.append(z)
        self.spare = None
    def u64(self):
        s = self.s
        r = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
        return r
    def uniform(self): return (self.u64() >> 11) * 2.0 ** -53
    def normal(self):
        if self.spare is not None:
            v = self.spare; self.spare = None; return np.float32(v)
        while True:
            u1 = self.uniform()
            if u1 > 0: break
        u2 = self.uniform()
        rad = math.sqrt(-2.0 * math.log(u1)); th = 2.0 * math.pi * u2
        self.spare = rad * math.sin(th)
        return np.float32(rad * math.cos(th))

def write_st(path, tensors):
    hdr = {}; off = 0; blobs = []
    for k, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.float32: "F32", np.int64: "I64", np.bool_: "BOOL"}[a.dtype.type]
        b = a.tobytes(); hdr[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
def read_st(path):
    d = open(path, "rb").read(); n = struct.unpack("<Q", d[:8])[0]; hdr = json.loads(d[8:8 + n]); out = {}
    for k, v in hdr.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(d[8 + n + a:8 + n + b], dtype={"F32": np.float32, "I64": np.int64}[v["dtype"]]).reshape(v["shape"])
    return out

def run_c(typ, cfg, ins, threads=2):
    d = os.path.join(TMP, "model"); os.makedirs(d, exist_ok=True)
    json.dump({"type": typ, "config": cfg}, open(d + "/config.json", "w"))
    write_st(os.path.join(TMP, "in.safetensors"), ins)
    subprocess.run([ATTN, "run", "--model", d, "--inputs", os.path.join(TMP, "in.safetensors"),
                    "--output", os.path.join(TMP, "out.safetensors"), "--threads", str(threads)], check=True)
    return read_st(os.path.join(TMP, "out.safetensors"))["output"]

# ---------------- clustered family ----------------
def masks(N, L, S, mask, ql, kl):
    qlen = torch.tensor(ql if ql is not None else [L] * N)
    klen = torch.tensor(kl if kl is not None else [S] * N)
    kadd = torch.log((torch.arange(S)[None, :] < klen[:, None]).float())
    return qlen, klen, kadd

def cluster_ref(hashes, qlen, K, iterations, bits, init, task_seed):
    N, H, L = hashes.shape
    mask = (1 << bits) - 1
    clusters = np.full((N, H, L), K + 1, dtype=np.int64)
    counts = np.zeros((N, H, K), dtype=np.int64)
    for n in range(N):
        for h in range(H):
            t = n * H + h
            rng = Rng(task_seed ^ (((t + 1) * 0xD1B54A32D192ED03) & M64))
            hs = [int(x) & M64 for x in hashes[n, h]]
            cent = [hs[i] for i in init]
            def assign():
                for l in range(int(qlen[n])):
                    best, arg = 1000, -1
                    for k in range(K):
                        d = bin(hs[l] ^ cent[k]).count("1")
                        if d < best: best, arg = d, k
                    clusters[n, h, l] = arg
            for it in range(1, iterations):
                assign()
                for k in range(K):
                    mem = [hs[l] for l in range(int(qlen[n])) if clusters[n, h, l] == k]
                    if not mem:
                        STATS["empty"] += 1; cent[k] = rng.u64() & mask; continue
                    c = 0
                    for b in range(bits):
                        cnt = sum(1 if (x >> b) & 1 else -1 for x in mem)
                        if cnt > 0: c |= 1 << b
                    cent[k] = c
            assign()
            for l in range(int(qlen[n])): counts[n, h, clusters[n, h, l]] += 1
    return torch.tensor(clusters), torch.tensor(counts)

def clustered_ref(variant, cfg, q, k, v, mask, ql, kl):
    Q = torch.tensor(q).permute(0, 2, 1, 3).contiguous(); Kt = torch.tensor(k).permute(0, 2, 1, 3).contiguous()
    V = torch.tensor(v).permute(0, 2, 1, 3).contiguous()
    N, H, L, E = Q.shape; S, D = V.shape[2], V.shape[3]
    K = cfg["clusters"]; bits = cfg.get("bits", 32); its = cfg.get("iterations", 10); topk = cfg.get("topk", 32)
    temp = cfg.get("softmax_temp") or 1. / math.sqrt(E)
    qlen, klen, kadd = masks(N, L, S, mask, ql, kl)
    rng = Rng(cfg.get("seed", 0))
    planes = torch.tensor(np.array([rng.normal() for _ in range(bits * (E + 1))], dtype=np.float32)).view(bits, E + 1)
    if not cfg.get("hash_bias", True): planes[:, -1] = 0
    perm = list(range(L))
    for i in range(K):
        r = i + int(rng.uniform() * (L - i)); r = min(r, L - 1)
        perm[i], perm[r] = perm[r], perm[i]
    init = perm[:K]; task_seed = rng.u64()
    proj = Q.reshape(-1, E) @ planes[:, :E].T
    bitsv = (proj > planes[:, E]).long()
    hashes = np.zeros(N * H * L, dtype=np.uint64)
    for i in range(bits): hashes |= (bitsv[:, i].numpy().astype(np.uint64) << np.uint64(i))
    hashes = hashes.reshape(N, H, L)
    clusters, counts = cluster_ref(hashes, qlen, K, its, bits, init, task_seed)
    # aggregate (labels outside [0,K) skipped)
    Qc = torch.zeros(N, H, K, E)
    for n in range(N):
        for h in range(H):
            for l in range(L):
                c = int(clusters[n, h, l])
                if 0 <= c < K: Qc[n, h, c] += Q[n, h, l] * (1. / counts[n, h, c].float())
    QK = torch.einsum("nhle,nhse->nhls", Qc, Kt) + kadd[:, None, None, :]
    out = torch.zeros(N, H, L, D)
    if variant == "clustered":
        A = torch.softmax(temp * QK, dim=-1); Vc = torch.einsum("nhls,nhsd->nhld", A, V)
        for n in range(N):
            for h in range(H):
                for l in range(L):
                    c = int(clusters[n, h, l])
                    if 0 <= c < K: out[n, h, l] = Vc[n, h, c]
    elif variant == "improved":
        kk = min(topk, S)
        tv, ti = torch.topk(QK, kk, sorted=False, dim=-1)
        A = torch.softmax(temp * QK, dim=-1); m = torch.ones_like(A)
        m.scatter_(-1, ti, 0.0); A = A * m; Ab = A.sum(-1); Vb = torch.einsum("nhls,nhse->nhle", A, V)
        for n in range(N):
            for h in range(H):
                for l in range(L):
                    c = int(clusters[n, h, l])
                    if not (0 <= c < K): continue
                    idx = ti[n, h, c]
                    z = (Kt[n, h, idx] * Q[n, h, l]).sum(-1)
                    z = z.masked_fill(torch.isinf(tv[n, 0, 0, :]), float("-inf"))
                    a = torch.softmax(temp * z, -1) * (1 - Ab[n, h, c])
                    out[n, h, l] = (a[:, None] * V[n, h, idx]).sum(0) + Vb[n, h, c]
    else:
        kk = min(topk, int(klen.min()))
        tv, ti = torch.topk(QK, kk, sorted=False, dim=-1)
        for n in range(N):
            for h in range(H):
                for l in range(L):
                    c = int(clusters[n, h, l])
                    if not (0 <= c < K): continue
                    idx = ti[n, h, c]
                    z = (Kt[n, h, idx] * Q[n, h, l]).sum(-1)
                    fut = idx > l
                    z = z.masked_fill(fut, -1e7)
                    a = torch.softmax(temp * z, -1) * (1. - fut.float())
                    out[n, h, l] = (a[:, None] * V[n, h, idx]).sum(0)
    return out.permute(0, 2, 1, 3).numpy()

# ---------------- reformer ----------------
def reformer_ref(cfg, q, v, mask, kl):
    Q = torch.tensor(q); V = torch.tensor(v)
    N, L, H, E = Q.shape
    c = cfg.get("chunk_size", 32); bits = cfg.get("bits", 8); rounds = cfg.get("rounds", 4)
    temp = cfg.get("softmax_temp") or 1. / math.sqrt(E)
    klen = torch.tensor(kl if kl is not None else [L] * N)
    kbool = torch.arange(L)[None, :] < klen[:, None]
    M = torch.log(kbool.float()).unsqueeze(1).expand(N, L, L)
    if cfg.get("masked", False): M = M + torch.eye(L).unsqueeze(0) * float(-1e9)
    if mask is not None and not mask.all(): M = M + torch.log(torch.tensor(mask).float()).unsqueeze(0)
    Kn = Q / torch.sqrt(torch.einsum("nlhe,nlhe->nlh", Q, Q)).unsqueeze(-1)
    Kn = Kn * kbool.float().view(N, L, 1, 1)
    rng = Rng(cfg.get("seed", 0))
    allp = torch.tensor(np.array([rng.normal() for _ in range(rounds * bits * E)], dtype=np.float32)).view(rounds, bits, E)
    out = 0
    for r in range(rounds):
        P = torch.einsum("nlhe,be->nlhb", Kn, allp[r])
        hashes = torch.argmax(torch.cat([P, -P], -1), -1)
        order = torch.sort(hashes, dim=1, stable=True)[1]
        res = torch.zeros(N, L, H, E)
        for n in range(N):
            for h in range(H):
                od = order[n, :, h]
                for b in range(L // c):
                    qi = od[b * c:(b + 1) * c]
                    if b == 0:
                        kidx = torch.cat([torch.zeros(c, dtype=torch.long), qi])
                    else:
                        kidx = od[(b - 1) * c:(b + 1) * c]
                    m = M[n][qi][:, kidx].clone()
                    Kg = Kn[n, kidx, h].clone(); Vg = V[n, kidx, h].clone()
                    if b == 0:
                        m[:, :c] = float("-inf"); Kg[:c] = 0; Vg[:c] = 0
                    allinf = torch.isinf(m).all(-1, keepdim=True); STATS["allinf"] += int(allinf.sum())
                    m = m.masked_fill(allinf, 0.)
                    A = torch.softmax(temp * (Q[n, qi, h] @ Kg.T + m), -1)
                    res[n, qi, h] = A @ Vg
        out = out + (1 / rounds) * res
    return out.numpy()

def check(name, got, want, tol=2e-5):
    err = np.abs(got - want); bad = ~(err <= tol * (1 + np.abs(want)))
    both_nan = np.isnan(got) & np.isnan(want)
    bad &= ~both_nan
    print(f"{name}: max err {np.nanmax(err) if err.size else 0:.3g}", "FAIL" if bad.any() else "ok")
    return not bad.any()

def gen(N, L, S, H, E, D, seed):
    g = np.random.default_rng(seed)
    return (g.standard_normal((N, L, H, E)).astype(np.float32), g.standard_normal((N, S, H, E)).astype(np.float32),
            g.standard_normal((N, S, H, D)).astype(np.float32))

ok = True
cases = [
    ("clustered", "clustered", {"clusters": 3, "seed": 1}, (2, 17, 9, 2, 6, 4), None, None, None),
    ("clustered", "clustered", {"clusters": 5, "bits": 63, "iterations": 4, "seed": 7}, (2, 20, 13, 2, 8, 3), None, [20, 11], [13, 6]),
    ("clustered", "clustered", {"clusters": 6, "bits": 5, "iterations": 6, "seed": 3, "hash_bias": False}, (2, 16, 16, 1, 4, 4), None, [16, 9], None),
    ("clustered", "clustered", {"clusters": 4, "bits": 64, "seed": 2}, (1, 12, 8, 2, 5, 5), None, None, None),
    ("improved_clustered", "improved", {"clusters": 3, "topk": 4, "seed": 11}, (2, 18, 12, 2, 6, 5), None, [18, 10], [12, 3]),
    ("improved_clustered", "improved", {"clusters": 4, "topk": 7, "bits": 8, "softmax_temp": 0.3, "seed": 5}, (2, 16, 20, 3, 4, 2), None, None, [20, 9]),
    ("improved_clustered_causal", "causal", {"clusters": 3, "topk": 5, "seed": 9}, (2, 14, 14, 2, 6, 3), "causal", [14, 10], [14, 12]),
    ("improved_clustered_causal", "causal", {"clusters": 5, "topk": 3, "bits": 10, "seed": 8}, (1, 16, 16, 2, 4, 4), "causal", None, None),
]
for typ, var, cfg, shp, mk, ql, kl in cases:
    N, L, S, H, E, D = shp
    q, k, v = gen(*shp, seed=len(str(cfg)))
    mask = np.tril(np.ones((L, S), dtype=np.bool_)) if mk == "causal" else None
    ins = {"queries": q, "keys": k, "values": v}
    if mask is not None: ins["attn_mask"] = mask
    if ql is not None: ins["query_lengths"] = np.array(ql, dtype=np.int64)
    if kl is not None: ins["key_lengths"] = np.array(kl, dtype=np.int64)
    got = run_c(typ, cfg, ins)
    want = clustered_ref(var, cfg, q, k, v, mask, ql, kl)
    ok &= check(f"{typ} {cfg}", got, want)

rcases = [
    ({"chunk_size": 4, "seed": 1}, (2, 16, 2, 6), None, None),
    ({"chunk_size": 2, "bits": 3, "rounds": 2, "seed": 4, "masked": True}, (2, 12, 2, 4), None, [12, 7]),
    ({"chunk_size": 4, "bits": 63, "rounds": 3, "seed": 2}, (1, 16, 3, 5), "causal", None),
    ({"chunk_size": 3, "bits": 64, "rounds": 1, "seed": 9, "softmax_temp": 0.2}, (2, 9, 1, 4), "causal", [9, 4]),
    ({"chunk_size": 2, "bits": 2, "rounds": 2, "seed": 3, "masked": True}, (1, 8, 2, 3), "causal", [5]),
]
for cfg, (N, L, H, E), mk, kl in rcases:
    q, k, v = gen(N, L, L, H, E, E, seed=len(str(cfg)))
    mask = np.tril(np.ones((L, L), dtype=np.bool_)) if mk == "causal" else None
    ins = {"queries": q, "keys": k, "values": v}
    if mask is not None: ins["attn_mask"] = mask
    if kl is not None: ins["key_lengths"] = np.array(kl, dtype=np.int64)
    got = run_c("reformer", cfg, ins)
    want = reformer_ref(cfg, q, v, mask, kl)
    ok &= check(f"reformer {cfg}", got, want)
print(STATS)
print("ALL OK" if ok else "SOME FAILED")
sys.exit(0 if ok else 1)
