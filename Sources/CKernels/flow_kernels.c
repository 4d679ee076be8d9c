// AVX-512 inverse of the rational-quadratic spline; see include/flow_kernels.h.
//
// Sixteen values per iteration, one per lane: each value's parameters are gathered across the
// lanes (stride `stride`), the widths' and heights' softmaxes run as `bins` vector
// exponentials, the bin is found by comparing the running knot heights with the value, and
// the knots, derivatives and the quadratic's root are selected per lane by masks. The same
// arithmetic as the Swift loop (Sources/Autograd/FlowKernels.swift), with fused multiply-adds
// and polynomial exp/log, so results differ by float rounding.
#include "flow_kernels.h"
#include "avx512_math.h"

#ifdef ASTRO_AVX512_KERNELS

/// `log(1 + e^x)` without overflow: `max(x, 0) + log(1 + e^−|x|)`.
KERNEL INLINE __m512 softplus16(__m512 x) {
    __m512 magnitude = _mm512_abs_ps(x);
    __m512 t = exp16(_mm512_sub_ps(_mm512_setzero_ps(), magnitude));
    return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), log16(_mm512_add_ps(_mm512_set1_ps(1), t)));
}

/// Softmax numerators `e^(v_j − max v)` of the `k` vectors at `v` into `e`; returns their sum.
KERNEL INLINE __m512 softmax_numerators16(const __m512 *v, long k, __m512 *e) {
    __m512 m = v[0];
    for (long j = 1; j < k; j++) m = _mm512_max_ps(m, v[j]);
    __m512 sum = _mm512_setzero_ps();
    for (long j = 0; j < k; j++) {
        e[j] = exp16(_mm512_sub_ps(v[j], m));
        sum = _mm512_add_ps(sum, e[j]);
    }
    return sum;
}

KERNEL void astro_rq_spline_inverse(float *values, long count, const float *parameters, long stride, long k,
                                    float tailBound, float minimumWidth, float minimumHeight, float minimumDerivative) {
    const __m512 lowB = _mm512_set1_ps(-tailBound), highB = _mm512_set1_ps(tailBound);
    const __m512 widthScale = _mm512_set1_ps((1 - minimumWidth * (float)k) * 2 * tailBound);
    const __m512 heightScale = _mm512_set1_ps((1 - minimumHeight * (float)k) * 2 * tailBound);
    const __m512 widthFloor = _mm512_set1_ps(minimumWidth * 2 * tailBound);
    const __m512 heightFloor = _mm512_set1_ps(minimumHeight * 2 * tailBound);
    const __m512 one = _mm512_set1_ps(1), zero = _mm512_setzero_ps();
    const __m512i rowOffset = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32((int)stride));
    __m512 raw[ASTRO_RQ_SPLINE_MAX_BINS], e[ASTRO_RQ_SPLINE_MAX_BINS];
    for (long i = 0; i < count; i += 16) {
        const long n = count - i < 16 ? count - i : 16;
        const __mmask16 live = n == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
        const float *p = parameters + i * stride;
        __m512 y = _mm512_maskz_loadu_ps(live, values + i);
        const __mmask16 inside = live & _mm512_cmp_ps_mask(y, lowB, _CMP_GE_OQ) & _mm512_cmp_ps_mask(y, highB, _CMP_LE_OQ);
        if (!inside) continue;
        // Heights: softmax, then the bin whose knots hold y, by the running sum of heights.
        for (long j = 0; j < k; j++)
            raw[j] = _mm512_mask_i32gather_ps(zero, inside, _mm512_add_epi32(rowOffset, _mm512_set1_epi32((int)(k + j))), p, 4);
        const __m512 hs = _mm512_div_ps(heightScale, softmax_numerators16(raw, k, e));
        __m512 running = zero, y0 = lowB, binHeight = zero;
        __m512i bin = _mm512_setzero_si512();
        __mmask16 found = 0;
        for (long j = 0; j < k; j++) {
            const __m512 size = _mm512_fmadd_ps(e[j], hs, heightFloor);
            const __m512 next = _mm512_add_ps(running, size);
            // The last bin takes every value no knot below it has taken.
            __mmask16 take = (__mmask16)~found;
            if (j < k - 1) take &= _mm512_cmp_ps_mask(_mm512_add_ps(lowB, next), y, _CMP_GT_OQ);
            y0 = _mm512_mask_mov_ps(y0, take, _mm512_add_ps(lowB, running));
            running = next;
            binHeight = _mm512_mask_mov_ps(binHeight, take, size);
            bin = _mm512_mask_mov_epi32(bin, take, _mm512_set1_epi32((int)j));
            found |= take;
        }
        const __mmask16 last = _mm512_cmpeq_epi32_mask(bin, _mm512_set1_epi32((int)(k - 1)));
        const __m512 y1 = _mm512_mask_mov_ps(_mm512_add_ps(y0, binHeight), last, highB);
        // Widths up to the bin.
        for (long j = 0; j < k; j++)
            raw[j] = _mm512_mask_i32gather_ps(zero, inside, _mm512_add_epi32(rowOffset, _mm512_set1_epi32((int)j)), p, 4);
        const __m512 ws = _mm512_div_ps(widthScale, softmax_numerators16(raw, k, e));
        __m512 partial = zero, x0 = lowB, x1 = highB;
        for (long j = 0; j < k; j++) {
            const __m512 size = _mm512_fmadd_ps(e[j], ws, widthFloor);
            const __mmask16 here = _mm512_cmpeq_epi32_mask(bin, _mm512_set1_epi32((int)j));
            const __m512 left = _mm512_add_ps(lowB, partial);
            x0 = _mm512_mask_mov_ps(x0, here, left);
            if (j < k - 1) x1 = _mm512_mask_mov_ps(x1, here, _mm512_add_ps(left, size));
            partial = _mm512_add_ps(partial, size);
        }
        // Derivatives at the bin's knots: 1 at the end knots, else minimum + softplus.
        const __mmask16 notFirst = inside & _mm512_cmpneq_epi32_mask(bin, _mm512_setzero_si512());
        const __mmask16 notLast = inside & (__mmask16)~last;
        const __m512i derivativeIndex = _mm512_add_epi32(rowOffset, _mm512_add_epi32(bin, _mm512_set1_epi32((int)(2 * k))));
        const __m512 rawD0 = _mm512_mask_i32gather_ps(zero, notFirst, _mm512_sub_epi32(derivativeIndex, _mm512_set1_epi32(1)), p, 4);
        const __m512 rawD1 = _mm512_mask_i32gather_ps(zero, notLast, derivativeIndex, p, 4);
        const __m512 minD = _mm512_set1_ps(minimumDerivative);
        const __m512 d0 = _mm512_mask_mov_ps(one, notFirst, _mm512_add_ps(softplus16(rawD0), minD));
        const __m512 d1 = _mm512_mask_mov_ps(one, notLast, _mm512_add_ps(softplus16(rawD1), minD));
        // The root of the bin's quadratic (SplineBin.inverse).
        const __m512 w = _mm512_sub_ps(x1, x0), h = _mm512_sub_ps(y1, y0), s = _mm512_div_ps(h, w);
        const __m512 dy = _mm512_sub_ps(y, y0);
        const __m512 c2 = _mm512_fnmadd_ps(_mm512_set1_ps(2), s, _mm512_add_ps(d0, d1));
        const __m512 a = _mm512_fmadd_ps(h, _mm512_sub_ps(s, d0), _mm512_mul_ps(dy, c2));
        const __m512 b = _mm512_fnmadd_ps(dy, c2, _mm512_mul_ps(h, d0));
        const __m512 c = _mm512_mul_ps(_mm512_sub_ps(zero, s), dy);
        const __m512 discriminant = _mm512_max_ps(_mm512_fnmadd_ps(_mm512_mul_ps(_mm512_set1_ps(4), a), c, _mm512_mul_ps(b, b)), zero);
        const __m512 denominator = _mm512_sub_ps(_mm512_sub_ps(zero, b), _mm512_sqrt_ps(discriminant));
        __m512 xi = _mm512_div_ps(_mm512_add_ps(c, c), denominator);
        xi = _mm512_min_ps(_mm512_max_ps(xi, zero), one);
        _mm512_mask_storeu_ps(values + i, inside, _mm512_fmadd_ps(xi, w, x0));
    }
}

#else

void astro_rq_spline_inverse(float *values, long count, const float *parameters, long stride, long bins,
                             float tailBound, float minimumWidth, float minimumHeight, float minimumDerivative) {
    (void)values; (void)count; (void)parameters; (void)stride; (void)bins;
    (void)tailBound; (void)minimumWidth; (void)minimumHeight; (void)minimumDerivative;
}

#endif
