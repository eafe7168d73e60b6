/* core/lock.c — pthread mutex/cond behind the wrapper; errors are bugs. */
#include <errno.h>
#include <time.h>

#include "core/assert.h"
#include "core/lock.h"
#include "core/prim.h"

void fleet__mutex_init(fleet__mutex *mu)
{
    FLEET_ASSERT(pthread_mutex_init(&mu->m, NULL) == 0);
}

void fleet__mutex_destroy(fleet__mutex *mu)
{
    FLEET_ASSERT(pthread_mutex_destroy(&mu->m) == 0);
}

/* The wrapper is what the analysis trusts: pthread's own calls carry no
 * annotations, so these two bodies are the one place it must not look. */
void fleet__mutex_lock(fleet__mutex *mu) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    FLEET_ASSERT(pthread_mutex_lock(&mu->m) == 0);
}

void fleet__mutex_unlock(fleet__mutex *mu) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    FLEET_ASSERT(pthread_mutex_unlock(&mu->m) == 0);
}

void fleet__mutex_reset_in_child(fleet__mutex *mu) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    FLEET_ASSERT(pthread_mutex_init(&mu->m, NULL) == 0);
}

void fleet__cond_init(fleet__cond *cv)
{
    pthread_condattr_t attr;
    FLEET_ASSERT(pthread_condattr_init(&attr) == 0);
    FLEET_ASSERT(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0);
    FLEET_ASSERT(pthread_cond_init(&cv->c, &attr) == 0);
    pthread_condattr_destroy(&attr);
}

void fleet__cond_destroy(fleet__cond *cv)
{
    FLEET_ASSERT(pthread_cond_destroy(&cv->c) == 0);
}

void fleet__cond_wait(fleet__cond *cv, fleet__mutex *mu)
{
    FLEET_ASSERT(pthread_cond_wait(&cv->c, &mu->m) == 0);
}

bool fleet__cond_wait_until(fleet__cond *cv, fleet__mutex *mu, uint64_t deadline_ns)
{
    if (deadline_ns == FLEET__FOREVER) {
        fleet__cond_wait(cv, mu);
        return true;
    }
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000u),
        .tv_nsec = (long)(deadline_ns % 1000000000u),
    };
    int rc = pthread_cond_timedwait(&cv->c, &mu->m, &ts);
    FLEET_ASSERT(rc == 0 || rc == ETIMEDOUT);
    return rc == 0;
}

void fleet__cond_signal(fleet__cond *cv)
{
    FLEET_ASSERT(pthread_cond_signal(&cv->c) == 0);
}

void fleet__cond_broadcast(fleet__cond *cv)
{
    FLEET_ASSERT(pthread_cond_broadcast(&cv->c) == 0);
}
