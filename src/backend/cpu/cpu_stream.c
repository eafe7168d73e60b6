/* backend/cpu/cpu_stream.c — worker-thread streams and count-based events.
 *
 * Why a real worker per stream: stream ordering, events and cross-stream
 * hazards are then as real on cpu as on a GPU, and ThreadSanitizer sees them.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_stream.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/lock.h"
#include "core/prim.h"

typedef struct cpu_task {
    fleet__cpu_task_fn run;
    alignas(16) unsigned char args[FLEET__CPU_TASK_ARGS];
} cpu_task;

struct fleet__cpu_stream {
    int ordinal;
    /* rank 6: guards everything below (a comment, not FLEET_GUARDED_BY:
     * see core/lock.h on member guards in C). */
    fleet__mutex lock;
    fleet__cond has_work;   /* worker waits here for tasks                 */
    fleet__cond progress;   /* signalled when a task completes             */
    uint64_t submitted;
    uint64_t completed;
    bool worker_running;
    bool stopping;
    bool in_task;           /* the worker is running a task now            */
    fleet__thread worker;
    cpu_task ring[FLEET__CPU_QUEUE_CAPACITY];
};

/* Every stream ever created, for shutdown and fork. Streams are only created
 * under the runtime's pool locks (rank 3), which the fork handlers take first,
 * so no creation is in flight while we walk the table during fork; shutdown
 * runs alone. */
#define CPU_STREAMS_MAX (32 * 64)
static _Atomic(fleet__cpu_stream *) all_streams[CPU_STREAMS_MAX];
static fleet_atomic_int all_streams_count;

/* Set by fleet__cpu_streams_quiesce_at_exit; workers stop taking tasks. */
static fleet_atomic_bool process_exiting;

/* rank 7: guards (stream, target) of every event; never held while taking a
 * stream lock. */
static fleet__mutex event_lock = {PTHREAD_MUTEX_INITIALIZER};

struct fleet__cpu_event {
    /* NULL: never recorded (complete) */
    fleet__cpu_stream *stream FLEET_GUARDED_BY(event_lock);
    /* stream->completed >= target: complete */
    uint64_t target FLEET_GUARDED_BY(event_lock);
};

static fleet__cpu_stream *registered_stream(int i)
{
    fleet__cpu_stream *s = fleet_atomic_load_acquire(&all_streams[i]);
    FLEET_ASSERT(s != NULL); /* no creation in flight where we walk the table */
    return s;
}

static void *worker_main(void *arg)
{
    fleet__cpu_stream *s = arg;
    cpu_task task;

    fleet__mutex_lock(&s->lock);
    for (;;) {
        while ((s->completed == s->submitted && !s->stopping) ||
               fleet_atomic_load_acquire(&process_exiting))
            fleet__cond_wait(&s->has_work, &s->lock); /* parked for good at exit */
        if (s->completed == s->submitted)
            break; /* stopping and drained */
        /* The slot stays reserved until completed moves past it, so the
         * producer cannot overwrite it while we run the copy. */
        memcpy(&task, &s->ring[s->completed % FLEET__CPU_QUEUE_CAPACITY], sizeof task);
        s->in_task = true;
        fleet__mutex_unlock(&s->lock);
        task.run(task.args);
        fleet__mutex_lock(&s->lock);
        s->in_task = false;
        s->completed++;
        fleet__cond_broadcast(&s->progress);
    }
    fleet__mutex_unlock(&s->lock);
    return NULL;
}

fleet_status fleet__cpu_stream_create(int ordinal, fleet__cpu_stream **out)
{
    fleet__cpu_stream *s = fleet__calloc(1, sizeof *s);
    if (s == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cpu backend: cannot allocate a stream");
    /* Devices create streams under their own pool locks, so creations on two
     * devices can race: reserve the registry slot atomically. */
    int slot = fleet_atomic_add_acq_rel(&all_streams_count, 1);
    FLEET_ASSERT(slot < CPU_STREAMS_MAX); /* 32 devices x 64 streams at most */
    s->ordinal = ordinal;
    fleet__mutex_init(&s->lock);
    fleet__cond_init(&s->has_work);
    fleet__cond_init(&s->progress);
    fleet_atomic_store_release(&all_streams[slot], s);
    *out = s;
    return FLEET_OK;
}

fleet_status fleet__cpu_stream_submit(fleet__cpu_stream *s, fleet__cpu_task_fn run,
                                      const void *args, size_t args_size)
{
    fleet_status st = FLEET_OK;
    FLEET_ASSERT(args_size <= FLEET__CPU_TASK_ARGS);
    fleet__mutex_lock(&s->lock);
    if (!s->worker_running) {
        /* Lazily, and again in a fork child whose workers are gone. */
        st = fleet__thread_start(&s->worker, worker_main, s, "fleet-cpu");
        if (st != FLEET_OK)
            goto out;
        s->worker_running = true;
    }
    while (s->submitted - s->completed >= FLEET__CPU_QUEUE_CAPACITY)
        fleet__cond_wait(&s->progress, &s->lock);
    cpu_task *t = &s->ring[s->submitted % FLEET__CPU_QUEUE_CAPACITY];
    t->run = run;
    memcpy(t->args, args, args_size);
    s->submitted++;
    fleet__cond_signal(&s->has_work);
out:
    fleet__mutex_unlock(&s->lock);
    return st;
}

/* Wait until `s` completed `target` tasks. */
static void wait_completed(fleet__cpu_stream *s, uint64_t target)
{
    fleet__mutex_lock(&s->lock);
    while (s->completed < target)
        fleet__cond_wait(&s->progress, &s->lock);
    fleet__mutex_unlock(&s->lock);
}

static bool reached(fleet__cpu_stream *s, uint64_t target)
{
    fleet__mutex_lock(&s->lock);
    bool done = s->completed >= target;
    fleet__mutex_unlock(&s->lock);
    return done;
}

static uint64_t submitted_now(fleet__cpu_stream *s)
{
    fleet__mutex_lock(&s->lock);
    uint64_t n = s->submitted;
    fleet__mutex_unlock(&s->lock);
    return n;
}

fleet_status fleet__cpu_stream_synchronize(fleet__cpu_stream *s)
{
    wait_completed(s, submitted_now(s));
    return FLEET_OK;
}

fleet_status fleet__cpu_stream_query(fleet__cpu_stream *s)
{
    fleet__mutex_lock(&s->lock);
    bool idle = s->completed == s->submitted;
    fleet__mutex_unlock(&s->lock);
    return idle ? FLEET_OK : FLEET_ERR_NOT_READY;
}

fleet_status fleet__cpu_event_create(fleet__cpu_event **out)
{
    fleet__cpu_event *e = fleet__calloc(1, sizeof *e);
    if (e == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "cpu backend: cannot allocate an event");
    *out = e;
    return FLEET_OK;
}

void fleet__cpu_event_destroy(fleet__cpu_event *e)
{
    free(e);
}

fleet_status fleet__cpu_event_record(fleet__cpu_event *e, fleet__cpu_stream *s)
{
    uint64_t target = submitted_now(s);
    fleet__mutex_lock(&event_lock);
    e->stream = s;
    e->target = target;
    fleet__mutex_unlock(&event_lock);
    return FLEET_OK;
}

static void snapshot(fleet__cpu_event *e, fleet__cpu_stream **s, uint64_t *target)
{
    fleet__mutex_lock(&event_lock);
    *s = e->stream;
    *target = e->target;
    fleet__mutex_unlock(&event_lock);
}

typedef struct wait_args {
    fleet__cpu_stream *stream;
    uint64_t target;
} wait_args;

static void wait_task(const void *p)
{
    const wait_args *w = p;
    wait_completed(w->stream, w->target);
}

fleet_status fleet__cpu_stream_wait_event(fleet__cpu_stream *s, fleet__cpu_event *e)
{
    wait_args w;
    snapshot(e, &w.stream, &w.target);
    /* The mark was captured at record time and refers to work already
     * queued, so waits only ever point back in time: no cycles. */
    if (w.stream == NULL || w.stream == s)
        return FLEET_OK;
    return fleet__cpu_stream_submit(s, wait_task, &w, sizeof w);
}

fleet_status fleet__cpu_event_query(fleet__cpu_event *e)
{
    fleet__cpu_stream *s;
    uint64_t target;
    snapshot(e, &s, &target);
    return s == NULL || reached(s, target) ? FLEET_OK : FLEET_ERR_NOT_READY;
}

fleet_status fleet__cpu_event_synchronize(fleet__cpu_event *e)
{
    fleet__cpu_stream *s;
    uint64_t target;
    snapshot(e, &s, &target);
    if (s != NULL)
        wait_completed(s, target);
    return FLEET_OK;
}

void fleet__cpu_streams_shutdown(void)
{
    int n = fleet_atomic_load_acquire(&all_streams_count);
    for (int i = 0; i < n; i++) {
        fleet__cpu_stream *s = registered_stream(i);
        fleet__mutex_lock(&s->lock);
        s->stopping = true;
        bool running = s->worker_running;
        fleet__cond_signal(&s->has_work);
        fleet__mutex_unlock(&s->lock);
        if (running)
            fleet__thread_join(&s->worker);
        fleet__cond_destroy(&s->has_work);
        fleet__cond_destroy(&s->progress);
        fleet__mutex_destroy(&s->lock);
        free(s);
        fleet_atomic_store_relaxed(&all_streams[i], NULL);
    }
    fleet_atomic_store_release(&all_streams_count, 0);
}

void fleet__cpu_streams_quiesce_at_exit(void)
{
    /* Bounded: a task may block for ever (a host function waiting on
     * something that will never come); exit must not hang on it. */
    uint64_t deadline = fleet__deadline_after_ms(1000);
    fleet_atomic_store_release(&process_exiting, true);
    int n = fleet_atomic_load_acquire(&all_streams_count);
    for (int i = 0; i < n; i++) {
        fleet__cpu_stream *s = fleet_atomic_load_acquire(&all_streams[i]);
        if (s == NULL)
            continue;
        fleet__mutex_lock(&s->lock);
        while (s->in_task && fleet__cond_wait_until(&s->progress, &s->lock, deadline)) {
        }
        fleet__mutex_unlock(&s->lock);
    }
}

/* The fork handlers take and release one lock per stream, a number the
 * analysis cannot follow; lifecycle.c pairs them. */
void fleet__cpu_streams_atfork_prepare(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    int n = fleet_atomic_load_acquire(&all_streams_count);
    for (int i = 0; i < n; i++)
        fleet__mutex_lock(&registered_stream(i)->lock);
    fleet__mutex_lock(&event_lock);
}

void fleet__cpu_streams_atfork_parent(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    int n = fleet_atomic_load_acquire(&all_streams_count);
    fleet__mutex_unlock(&event_lock);
    for (int i = n - 1; i >= 0; i--)
        fleet__mutex_unlock(&registered_stream(i)->lock);
}

void fleet__cpu_streams_atfork_child(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    int n = fleet_atomic_load_acquire(&all_streams_count);
    fleet__mutex_unlock(&event_lock);
    for (int i = n - 1; i >= 0; i--) {
        fleet__cpu_stream *s = registered_stream(i);
        /* The parent's workers do not exist here. Work still queued belongs
         * to the parent; the child starts each stream empty, with every
         * earlier sequence number complete so old events read as done. */
        s->completed = s->submitted;
        s->worker_running = false;
        s->stopping = false;
        s->in_task = false;
        /* Condition variables may hold state about parent threads that
         * waited on them; start them afresh. */
        fleet__cond_init(&s->has_work);
        fleet__cond_init(&s->progress);
        fleet__mutex_reset_in_child(&s->lock);
    }
}
