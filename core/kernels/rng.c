/*
 * rng.c — a small, fast, seedable generator for the mechanisms whose
 * reference is random (hash planes, random features, centroid choice).
 * It does not reproduce torch's Mersenne stream; it makes our results
 * reproducible for a given `seed` config key, which is the contract.
 */
#include "kernels.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void attn__rng_seed(attn_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t attn__rng_u64(attn_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double attn__rng_uniform(attn_rng *r) { return (double)(attn__rng_u64(r) >> 11) * 0x1.0p-53; }

float attn__rng_normal(attn_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return (float)r->spare;
    }
    double u1, u2;
    do u1 = attn__rng_uniform(r);
    while (u1 <= 0.0);
    u2 = attn__rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return (float)(rad * cos(th));
}
