#ifndef ASTROLABE_CBLAS_SHIM_H
#define ASTROLABE_CBLAS_SHIM_H
#include <cblas.h>
/* LAPACK's symmetric eigen-decomposition, which libopenblas exports (Debian ships no
   lapack.h with libopenblas-dev): jobz 'V' for vectors, uplo 'U'/'L', column-major a. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
#endif
