// Whether the AVX-512 kernels of this module (lstm_kernels.h, flow_kernels.h, gaussian_mixture.h) can run here.
//
// Swift's SIMD types compile to SSE2 without a target CPU, so the hottest inner loops live in
// C, compiled per function for AVX-512F and chosen at run time; on other CPUs (or other
// architectures) this returns 0 and the Swift callers keep their portable paths.
#ifndef ASTROLABE_AVX512_H
#define ASTROLABE_AVX512_H

#ifdef __cplusplus
extern "C" {
#endif

/// 1 if this CPU (and OS) runs AVX-512F and FMA code, else 0.
int astro_avx512_available(void);

#ifdef __cplusplus
}
#endif

#endif
