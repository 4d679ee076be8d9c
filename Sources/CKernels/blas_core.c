// OpenBLAS kernels for CPUs its DYNAMIC_ARCH build does not know (declared in include/lstm_kernels.h).
//
// OpenBLAS 0.3.21 (Debian 12) picks its kernels from the CPU model; for a model it does not
// know (e.g. Intel family 6 model 207, Emerald Rapids) it falls back to Prescott's SSE3
// kernels, 3-5x slower at sgemm than the AVX-512 ones the CPU runs (measured: 28 against
// 142 GFLOP/s at 256^3 on one core). Before main runs, and only when the user has not set
// OPENBLAS_CORETYPE and OpenBLAS chose a pre-AVX core, this picks kernels from the CPU's
// features as later OpenBLAS releases do for an unknown CPU (SkylakeX with AVX-512 F, DQ,
// CD, BW and VL; Haswell with AVX2 and FMA), where the operating system saves the registers
// (XCR0), and re-runs OpenBLAS's own dynamic initialisation with it: the same as
// starting the process with OPENBLAS_CORETYPE set. No BLAS call has run yet, and OpenBLAS's
// worker threads are idle. The choice is reported by astro_blas_core_note().
#include "lstm_kernels.h"

#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char *openblas_get_corename(void) __attribute__((weak));
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

static char note[256];

const char *astro_blas_core_note(void) { return note; }

#if defined(__x86_64__)
static unsigned long long xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

/// The OpenBLAS core name the CPU and the operating system support, or NULL.
static const char *supported_core(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NULL;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return NULL;
    unsigned long long state = xcr0();
    if ((state & 0x6) != 0x6) return NULL;                       // SSE and AVX state saved
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NULL;
    int avx2 = (b >> 5) & 1;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 28) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    if (avx512 && (state & 0xE6) == 0xE6) return "SkylakeX";    // opmask and ZMM state saved
    return (avx2 && fma) ? "Haswell" : NULL;
}

__attribute__((constructor))
static void astro_choose_blas_core(void) {
    if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;   // not DYNAMIC_ARCH
    if (getenv("OPENBLAS_CORETYPE") != NULL) return;                                          // the user's choice
    const char *chosen = openblas_get_corename();
    static const char *preAVX[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Nano", "Katmai",
                                   "Coppermine", "Northwood", "Banias", "Athlon", "Opteron", "Opteron(SSE3)", "Barcelona"};
    int generic = 0;
    for (size_t i = 0; i < sizeof preAVX / sizeof preAVX[0]; i++) {
        if (chosen && strcmp(chosen, preAVX[i]) == 0) generic = 1;
    }
    const char *better = generic ? supported_core() : NULL;
    if (better == NULL) return;
    setenv("OPENBLAS_CORETYPE", better, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    snprintf(note, sizeof note, "OpenBLAS does not know this CPU and chose %s kernels; using %s, which it supports "
             "(set OPENBLAS_CORETYPE to choose)", chosen, openblas_get_corename());   // names from static tables
}
#endif
