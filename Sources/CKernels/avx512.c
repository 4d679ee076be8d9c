// See include/avx512.h.
#include "avx512.h"
#include "avx512_math.h"

#ifdef ASTRO_AVX512_KERNELS
int astro_avx512_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") ? 1 : 0;
}
#else
int astro_avx512_available(void) { return 0; }
#endif
