#ifndef ASTROLABE_CWCS_SHIM_H
#define ASTROLABE_CWCS_SHIM_H
#include <wcslib/wcs.h>
#include <wcslib/wcshdr.h>
#include <wcslib/wcsfix.h>
#endif
