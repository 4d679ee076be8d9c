#ifndef ASTROLABE_CBLAS_SHIM_H
#define ASTROLABE_CBLAS_SHIM_H
#include <cblas.h>
#endif
