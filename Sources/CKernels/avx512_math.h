// Shared AVX-512 vector math of the C kernels (lstm_kernels.c, flow_kernels.c): functions
// compiled for AVX-512F and FMA on their own, whatever the rest of the build targets; callers
// check `astro_avx512_available()` (include/avx512.h) before running any of them.
#ifndef ASTROLABE_AVX512_MATH_H
#define ASTROLABE_AVX512_MATH_H

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define ASTRO_AVX512_KERNELS 1
#define KERNEL __attribute__((target("avx512f,fma")))
#define INLINE static inline __attribute__((always_inline))

/// `1 / d` for `d ≥ 1`: `vrcp14ps` and one Newton step (relative error ~1e-7 plus rounding).
KERNEL INLINE __m512 reciprocal16(__m512 d) {
    __m512 r = _mm512_rcp14_ps(d);
    __m512 e = _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1));
    return _mm512_fmadd_ps(r, e, r);
}

/// `e^x = 2^u`, `u = log2(e) x`, with `x` clamped to `|x| ≤ 87` (`e^x` stays finite and
/// normal): `u = n + f` with `n` the nearest integer and `f` computed from `x` with `log2 e`
/// in two parts (no rounding of `u` itself), `2^f` by a degree-5 minimax polynomial on
/// [-1/2, 1/2] (relative error 8e-8), `2^n` by `vscalefps`. Relative error < 3e-7 (measured
/// in float32).
KERNEL INLINE __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(87.0f)), _mm512_set1_ps(-87.0f));
    const __m512 a1 = _mm512_set1_ps(1.44269502162933349609375f);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, a1), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fmsub_ps(x, a1, n);
    f = _mm512_fmadd_ps(x, _mm512_set1_ps(1.925963033500011e-08f), f);
    __m512 p = _mm512_set1_ps(0.0013276456156745553f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.009675540961325169f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.05550713464617729f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24022120237350464f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931469440460205f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0000001192092896f));
    return _mm512_scalef_ps(p, n);
}

/// `log x` for positive normal `x`: `x = m 2^e` with `m` in [√½, √2) (`vgetmantps`,
/// `vgetexpps`), then Cephes' `logf` polynomial in `m − 1` and `ln 2` in two parts
/// (relative error ~1e-7).
KERNEL INLINE __m512 log16(__m512 x) {
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __m512 e = _mm512_getexp_ps(x);
    __mmask16 high = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, high, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, high, e, _mm512_set1_ps(1));
    __m512 r = _mm512_sub_ps(m, _mm512_set1_ps(1)), z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(7.0376836292e-2f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(-1.1514610310e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.1676998740e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(-1.2420140846e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.4249322787e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(-1.6668057665e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.0000714765e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(-2.4999993993e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(3.3333331174e-1f));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, r), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), _mm512_add_ps(r, y));
}

#endif
#endif
