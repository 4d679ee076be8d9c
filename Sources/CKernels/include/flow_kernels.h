// AVX-512 kernel of a normalizing flow's sampling path (Sources/Autograd/FlowKernels.swift):
// the inverse of the rational-quadratic spline, sixteen values at a time. Run only where
// `astro_avx512_available()` (avx512.h) says so.
#ifndef ASTROLABE_FLOW_KERNELS_H
#define ASTROLABE_FLOW_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// The most bins `astro_rq_spline_inverse` takes.
#define ASTRO_RQ_SPLINE_MAX_BINS 32

/// In place on `count` values, value `i` with its `3 bins − 1` raw parameters at
/// `parameters + i * stride` (`bins` unnormalised widths, `bins` heights, `bins − 1` interior
/// derivatives before softplus): the inverse of the spline that
/// `FlowKernels.rationalQuadraticSplineInverse` documents (knots on [−tailBound, tailBound];
/// values outside, and NaN, pass unchanged). `bins` is 1 to ASTRO_RQ_SPLINE_MAX_BINS.
void astro_rq_spline_inverse(float *values, long count, const float *parameters, long stride, long bins,
                             float tailBound, float minimumWidth, float minimumHeight, float minimumDerivative);

#ifdef __cplusplus
}
#endif

#endif
