#ifndef ASTROLABE_CFITSIO_SHIM_H
#define ASTROLABE_CFITSIO_SHIM_H
#include <fitsio.h>
#endif
