/* core/spin.h — brief spinning before parking: the one home of its rule.
 *
 * A thread about to park (a cpu stream's idle worker, a thread waiting for a
 * stream or a batcher ticket) may spin first, for up to FLEET_CPU_SPIN_US,
 * so a wake-up a few microseconds away costs no sleep. It may only while a
 * core is idle: the machine's runnable threads (sampled from /proc/loadavg
 * at most once a millisecond) are no more than the cores, and fleet's own
 * threads that run cpu tasks or spin are fewer. On a loaded machine it
 * parks at once, leaving the cores to work. */
#ifndef FLEET_CORE_SPIN_H
#define FLEET_CORE_SPIN_H

#include <stdbool.h>
#include <stdint.h>

/* At init: the budget in microseconds (0: never spin) and the core count. */
void fleet__spin_configure(uint64_t budget_us);

/* A thread starts / stops running a cpu task (it occupies a core). */
void fleet__spin_busy_enter(void);
void fleet__spin_busy_leave(void);

/* Spin until done(arg) or the budget is spent, if a core is free; whether
 * done(arg) held. done is read without locks: it is a hint, the caller
 * checks again under its lock. */
bool fleet__spin_until(bool (*done)(const void *arg), const void *arg);

/* In a fork child: the forking thread is the only one left. */
void fleet__spin_reset_in_child(void);

#endif /* FLEET_CORE_SPIN_H */
