#ifndef ASTROLABE_CMPI_SHIM_H
#define ASTROLABE_CMPI_SHIM_H
// Open MPI (Debian: libopenmpi-dev). Its handles (MPI_COMM_WORLD, MPI_FLOAT, ...) are
// macros over addresses of globals, which Swift cannot import: these functions return them.
#include <mpi.h>

static inline MPI_Comm astro_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype astro_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype astro_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype astro_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype astro_mpi_int(void) { return MPI_INT; }
static inline MPI_Op astro_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op astro_mpi_max(void) { return MPI_MAX; }
static inline MPI_Errhandler astro_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request astro_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *astro_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline void *astro_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int astro_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int astro_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int astro_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int astro_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Info astro_mpi_info_null(void) { return MPI_INFO_NULL; }
#endif
