/* The machine's single-precision FMA peak: each thread runs 12 independent chains of
 * 16-lane AVX-512 FMAs (enough to cover the FMA latency on every x86 core with two
 * 512-bit FMA pipes), and the GFLOP/s of all threads together (2 flops per lane per FMA)
 * is printed as JSON: over the wall time, and per CPU-second of the threads (the figure
 * for an undisturbed machine when others share it). Used by bench/conv_share.py:
 *     cc -O2 -mavx512f -mfma -pthread bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak 2 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12   /* the accumulators c0 ... c11 below */
static const long iterations = 200000000L / CHAINS;

struct result { float sum; double cpu_seconds; };

static void *run(void *out) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2), c3 = _mm512_set1_ps(3);
    __m512 c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5), c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7);
    __m512 c8 = _mm512_set1_ps(8), c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);
    for (long i = 0; i < iterations; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b); c1 = _mm512_fmadd_ps(c1, a, b); c2 = _mm512_fmadd_ps(c2, a, b);
        c3 = _mm512_fmadd_ps(c3, a, b); c4 = _mm512_fmadd_ps(c4, a, b); c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b); c7 = _mm512_fmadd_ps(c7, a, b); c8 = _mm512_fmadd_ps(c8, a, b);
        c9 = _mm512_fmadd_ps(c9, a, b); c10 = _mm512_fmadd_ps(c10, a, b); c11 = _mm512_fmadd_ps(c11, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    ((struct result *)out)->sum = _mm512_reduce_add_ps(s);
    ((struct result *)out)->cpu_seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) threads = 1;
    pthread_t ids[64];
    struct result results[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, run, &results[t]);
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    double flops = 2.0 * 16 * CHAINS * (double)iterations;   /* per thread */
    double cpu = 0;
    for (int t = 0; t < threads; t++) cpu += results[t].cpu_seconds;
    /* gflops: all threads over the wall time; gflops_cpu: per CPU-second of the threads x threads,
       the peak of `threads` cores had they run undisturbed (the machine may be shared). */
    printf("{\"threads\": %d, \"seconds\": %.4f, \"gflops\": %.1f, \"gflops_cpu\": %.1f, \"checksum\": %g}\n",
           threads, seconds, flops * threads / seconds * 1e-9, flops * threads / cpu * threads * 1e-9,
           (double)results[0].sum);
    return 0;
}
