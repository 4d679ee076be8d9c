#ifndef ASTROLABE_CPNG_SHIM_H
#define ASTROLABE_CPNG_SHIM_H
#include <png.h>
#endif
