/* core/spin.c — the spin budget and the count of fleet's busy threads. */
#include "core/spin.h"

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

bool fleet__spin_until(bool (*done)(const void *arg), const void *arg)
{
    uint64_t ns = fleet_atomic_load_relaxed(&budget_ns);
    int n = fleet_atomic_load_relaxed(&cores);
    if (ns == 0 || n <= 1)
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
