#ifndef ASTROLABE_CBLAS_SHIM_H
#define ASTROLABE_CBLAS_SHIM_H
#include <cblas.h>
/* LAPACK's symmetric eigen-decomposition, which libopenblas exports (Debian ships no
   lapack.h with libopenblas-dev): jobz 'V' for vectors, uplo 'U'/'L', column-major a. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);
/* LAPACK's Cholesky solve of a symmetric positive-definite system (column-major a, nrhs columns of b). */
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b, const int *ldb,
            int *info);
/* LAPACK's Cholesky factorisation a = L Lᵀ (uplo 'L') or Uᵀ U ('U'), in place, column-major. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
#endif
