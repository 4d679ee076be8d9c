/* own FMA-throughput test: T threads, each 16 independent accumulators of 512-bit (or 256-bit) FMAs.
   prints GFLOP/s per wall second and per thread-CPU-second. usage: fma THREADS WIDTH(512|256) */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static long N = 20000000; static int W = 512;
static double now(clockid_t c){struct timespec t;clock_gettime(c,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static void *run(void *o){
  double c0=now(CLOCK_THREAD_CPUTIME_ID); float s=0;
  if (W==512){ __m512 a=_mm512_set1_ps(0.9999f),b=_mm512_set1_ps(1e-7f);
    __m512 x0=_mm512_set1_ps(0.5f);__m512 x1=_mm512_set1_ps(1.5f);__m512 x2=_mm512_set1_ps(2.5f);__m512 x3=_mm512_set1_ps(3.5f);__m512 x4=_mm512_set1_ps(4.5f);__m512 x5=_mm512_set1_ps(5.5f);__m512 x6=_mm512_set1_ps(6.5f);__m512 x7=_mm512_set1_ps(7.5f);__m512 x8=_mm512_set1_ps(8.5f);__m512 x9=_mm512_set1_ps(9.5f);__m512 x10=_mm512_set1_ps(10.5f);__m512 x11=_mm512_set1_ps(11.5f);__m512 x12=_mm512_set1_ps(12.5f);__m512 x13=_mm512_set1_ps(13.5f);__m512 x14=_mm512_set1_ps(14.5f);__m512 x15=_mm512_set1_ps(15.5f);
    for(long i=0;i<N;i++){
#define F(x) x=_mm512_fmadd_ps(x,a,b);
      F(x0)F(x1)F(x2)F(x3)F(x4)F(x5)F(x6)F(x7)F(x8)F(x9)F(x10)F(x11)F(x12)F(x13)F(x14)F(x15)
      __asm__ volatile("" : "+v"(x0),"+v"(x1),"+v"(x2),"+v"(x3),"+v"(x4),"+v"(x5),"+v"(x6),"+v"(x7));
    }
    x0=_mm512_add_ps(x0,x1);x2=_mm512_add_ps(x2,x3);x4=_mm512_add_ps(x4,x5);x6=_mm512_add_ps(x6,x7);
    x8=_mm512_add_ps(x8,x9);x10=_mm512_add_ps(x10,x11);x12=_mm512_add_ps(x12,x13);x14=_mm512_add_ps(x14,x15);
    s=_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0,x2),_mm512_add_ps(x4,x6)),_mm512_add_ps(_mm512_add_ps(x8,x10),_mm512_add_ps(x12,x14))));
  } else { __m256 a=_mm256_set1_ps(0.9999f),b=_mm256_set1_ps(1e-7f);
    __m256 x0=_mm256_set1_ps(0.5f);__m256 x1=_mm256_set1_ps(1.5f);__m256 x2=_mm256_set1_ps(2.5f);__m256 x3=_mm256_set1_ps(3.5f);__m256 x4=_mm256_set1_ps(4.5f);__m256 x5=_mm256_set1_ps(5.5f);__m256 x6=_mm256_set1_ps(6.5f);__m256 x7=_mm256_set1_ps(7.5f);__m256 x8=_mm256_set1_ps(8.5f);__m256 x9=_mm256_set1_ps(9.5f);__m256 x10=_mm256_set1_ps(10.5f);__m256 x11=_mm256_set1_ps(11.5f);
    for(long i=0;i<N;i++){
#define G(x) x=_mm256_fmadd_ps(x,a,b);
      G(x0)G(x1)G(x2)G(x3)G(x4)G(x5)G(x6)G(x7)G(x8)G(x9)G(x10)G(x11)
      __asm__ volatile("" : "+x"(x0),"+x"(x1),"+x"(x2),"+x"(x3));
    }
    float t[8]; _mm256_storeu_ps(t,_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0,x1),_mm256_add_ps(x2,x3)),_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x4,x5),_mm256_add_ps(x6,x7)),_mm256_add_ps(_mm256_add_ps(x8,x9),_mm256_add_ps(x10,x11)))));
    for(int k=0;k<8;k++) s+=t[k];
  }
  ((double*)o)[0]=now(CLOCK_THREAD_CPUTIME_ID)-c0; ((double*)o)[1]=s; return NULL;}
int main(int c,char**v){int T=atoi(v[1]);W=atoi(v[2]); if(W==256) N=N*16/12*2; pthread_t id[8];double r[8][2];
  double t0=now(CLOCK_MONOTONIC);for(int i=0;i<T;i++)pthread_create(&id[i],0,run,r[i]);for(int i=0;i<T;i++)pthread_join(id[i],0);
  double wall=now(CLOCK_MONOTONIC)-t0, cpu=0; for(int i=0;i<T;i++)cpu+=r[i][0];
  double flop = (W==512? 16.0*16*2 : 12.0*8*2) * N * T;
  printf("{\"threads\":%d,\"width\":%d,\"gflops_wall\":%.1f,\"gflops_per_cpu_s_x_threads\":%.1f,\"chk\":%g}\n",T,W,flop/wall/1e9,flop/cpu*T/1e9,r[0][1]);}
