// Images of Gaussian mixtures: the closed-form PSF-convolved Sérsic profiles that `SceneFit`
// draws (Sources/SkySim/SersicMixture.swift). Sixteen pixels per iteration with the AVX-512
// exponential where `astro_avx512_available()` (avx512.h) says so, one at a time otherwise.
#ifndef ASTROLABE_GAUSSIAN_MIXTURE_H
#define ASTROLABE_GAUSSIAN_MIXTURE_H

#ifdef __cplusplus
extern "C" {
#endif

/// Adds to `image` (row-major, `height` rows of `width`, pixel (x, y) centred at x, y) the
/// `count` Gaussians at `components`, six values each: amplitude A, centre cx, cy, and the
/// inverse covariance (a, b, c), so a component adds A exp(-(a dx² + 2 b dx dy + c dy²) / 2),
/// dx = x - cx, dy = y - cy. Pixels where a component falls below `cutoff` (counts; 0: below
/// 1e-19 of its amplitude) are skipped, and a component whose amplitude is below it adds
/// nothing, as does one whose inverse covariance is not positive definite or whose values are
/// not finite. `vector` nonzero: the AVX-512 loop (the caller checks the CPU has it); zero:
/// the portable loop.
void astro_gaussian_mixture_image(float *image, long width, long height, const double *components, long count,
                                  double cutoff, int vector);

#ifdef __cplusplus
}
#endif

#endif
