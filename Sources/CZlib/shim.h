#ifndef ASTROLABE_CZLIB_SHIM_H
#define ASTROLABE_CZLIB_SHIM_H
#include <zlib.h>
#endif
