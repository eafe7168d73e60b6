/* core/spin.c — the spin budget, fleet's busy threads, and a sample of the
 * machine's runnable threads. */
#include "core/spin.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/prim.h"

static fleet_atomic_u64 budget_ns = 50000;
static fleet_atomic_int cores = 1;
static fleet_atomic_int busy; /* threads running a cpu task or spinning */

void fleet__spin_configure(uint64_t budget_us)
{
    fleet_atomic_store_relaxed(&budget_ns, budget_us * 1000);
    fleet_atomic_store_relaxed(&cores, fleet__cpu_count());
}

void fleet__spin_busy_enter(void)
{
    fleet_atomic_add_acq_rel(&busy, 1);
}

void fleet__spin_busy_leave(void)
{
    fleet_atomic_sub_acq_rel(&busy, 1);
}

/* Runnable threads on the machine (the kernel's count in /proc/loadavg,
 * "running/total"), sampled at most once a millisecond by whichever thread
 * asks first; 0 where it cannot be read (then fleet's own count decides). */
static fleet_atomic_u64 sampled_at;
static fleet_atomic_int runnable;

static int runnable_threads(void)
{
    uint64_t now = fleet__now_ns(), last = fleet_atomic_load_relaxed(&sampled_at);
    if (now - last > 1000000 && fleet_atomic_cas_relaxed(&sampled_at, &last, now)) {
        char buf[128];
        int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        int r = 0;
        if (n > 0) { /* "0.52 0.58 0.59 3/517 12345": the fourth field */
            buf[n] = '\0';
            char *p = buf;
            for (int field = 0; field < 3 && p != NULL; field++)
                if ((p = strchr(p, ' ')) != NULL)
                    p++;
            if (p != NULL)
                r = atoi(p);
        }
        fleet_atomic_store_relaxed(&runnable, r);
    }
    return fleet_atomic_load_relaxed(&runnable);
}

bool fleet__spin_until(bool (*done)(const void *arg), const void *arg)
{
    uint64_t ns = fleet_atomic_load_relaxed(&budget_ns);
    int n = fleet_atomic_load_relaxed(&cores);
    /* A spinner takes a core: only an idle one. Runnable counts the asking
     * thread itself, so "more runnable threads than cores" parks at once. */
    if (ns == 0 || n <= 1 || runnable_threads() > n)
        return done(arg);
    if (fleet_atomic_add_acq_rel(&busy, 1) >= n) {
        fleet_atomic_sub_acq_rel(&busy, 1);
        return done(arg);
    }
    uint64_t end = fleet__now_ns() + ns;
    bool ok;
    for (unsigned i = 1; !(ok = done(arg)); i++) {
        fleet__cpu_relax();
        if (i % 64 == 0 && fleet__now_ns() >= end)
            break;
    }
    fleet_atomic_sub_acq_rel(&busy, 1);
    return ok;
}

void fleet__spin_reset_in_child(void)
{
    fleet_atomic_store_relaxed(&busy, 0);
}
