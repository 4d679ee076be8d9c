// Thread affinity for parallel regions (declared in include/lstm_kernels.h).
#define _GNU_SOURCE
#include "lstm_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

long astro_affinity_bytes(void) { return (long)sizeof(cpu_set_t); }

int astro_thread_pin(int slot, unsigned char *saved) {
    cpu_set_t previous, only;
    if (pthread_getaffinity_np(pthread_self(), sizeof previous, &previous) != 0) return -1;
    // The slot-th CPU this thread may run on (a cpuset may allow, say, CPUs 2 and 3 only).
    int cpu = -1;
    for (int c = 0, seen = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &previous) && seen++ == slot) { cpu = c; break; }
    }
    if (cpu < 0) return -1;
    memcpy(saved, &previous, sizeof previous);
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    return pthread_setaffinity_np(pthread_self(), sizeof only, &only);
}

void astro_thread_restore(const unsigned char *saved) {
    cpu_set_t previous;
    memcpy(&previous, saved, sizeof previous);
    pthread_setaffinity_np(pthread_self(), sizeof previous, &previous);
}
