// Images of Gaussian mixtures; see include/gaussian_mixture.h.
#include "gaussian_mixture.h"
#include "avx512_math.h"
#include <math.h>

/// The largest quadratic form a pixel is drawn at (an exponent of -44: 1e-19 of the amplitude).
static const double widestReach = 88.0;

#ifdef ASTRO_AVX512_KERNELS
/// One row's pixels x0...x1 of one component: `e` = -(a dx² + 2 b dy dx + c dy²) / 2 per lane.
KERNEL static void row16(float *row, long x0, long x1, float amplitude, float cx, float a, float bdy, float cdy2) {
    const __m512 lane = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 va = _mm512_set1_ps(-0.5f * a), vb = _mm512_set1_ps(-bdy), vc = _mm512_set1_ps(-0.5f * cdy2);
    const __m512 amp = _mm512_set1_ps(amplitude), floorExp = _mm512_set1_ps(-87.0f);
    for (long x = x0; x <= x1; x += 16) {
        long left = x1 - x + 1;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 dx = _mm512_sub_ps(_mm512_add_ps(_mm512_set1_ps((float)x), lane), _mm512_set1_ps(cx));
        __m512 e = _mm512_fmadd_ps(_mm512_fmadd_ps(va, dx, vb), dx, vc);
        e = _mm512_max_ps(e, floorExp);
        __m512 value = _mm512_mul_ps(amp, exp16(e));
        __m512 old = _mm512_maskz_loadu_ps(mask, row + x);
        _mm512_mask_storeu_ps(row + x, mask, _mm512_add_ps(old, value));
    }
}
#endif

void astro_gaussian_mixture_image(float *image, long width, long height, const double *components, long count,
                                  double cutoff, int vector) {
    for (long k = 0; k < count; k++) {
        const double *g = components + 6 * k;
        const double amplitude = g[0], cx = g[1], cy = g[2], a = g[3], b = g[4], c = g[5];
        const double det = a * c - b * b;
        if (!isfinite(amplitude) || !isfinite(cx) || !isfinite(cy) || !(a > 0) || !(c > 0) || !(det > 0) ||
            !isfinite(det)) continue;
        // Out to where the component falls to `cutoff`: A exp(-q / 2) = cutoff at q = 2 ln(A / cutoff).
        const double reach = cutoff > 0 ? fmin(widestReach, 2 * log(fabs(amplitude) / cutoff)) : widestReach;
        if (!(reach > 0)) continue;
        // The smallest quadratic form over x at a given dy is (det / a) dy².
        const double curvature = det / a, extent = sqrt(reach / curvature);
        long y0 = (long)ceil(cy - extent), y1 = (long)floor(cy + extent);
        if (y0 < 0) y0 = 0;
        if (y1 > height - 1) y1 = height - 1;
        for (long y = y0; y <= y1; y++) {
            const double dy = (double)y - cy, rest = reach - curvature * dy * dy;
            if (rest < 0) continue;
            const double centre = cx - b * dy / a, half = sqrt(rest / a);
            long x0 = (long)ceil(centre - half), x1 = (long)floor(centre + half);
            if (x0 < 0) x0 = 0;
            if (x1 > width - 1) x1 = width - 1;
            if (x0 > x1) continue;
            float *row = image + y * width;
#ifdef ASTRO_AVX512_KERNELS
            if (vector) {
                // Offsets from the row's first pixel keep the lanes' dx small and exact in float.
                row16(row + x0, 0, x1 - x0, (float)amplitude, (float)(cx - (double)x0), (float)a, (float)(b * dy),
                      (float)(c * dy * dy));
                continue;
            }
#endif
            for (long x = x0; x <= x1; x++) {
                const double dx = (double)x - cx;
                row[x] += (float)(amplitude * exp(-0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy)));
            }
        }
    }
}
