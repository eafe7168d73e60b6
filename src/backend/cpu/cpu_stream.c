/* backend/cpu/cpu_stream.c — worker-thread streams and count-based events.
 *
 * Why a real worker per stream: stream ordering, events and cross-stream
 * hazards are then as real on cpu as on a GPU, and ThreadSanitizer sees them.
 *
 * The hand-off costs no sleep on the hot path:
 * - One thread at a time runs a stream's tasks, the head first (`executing`
 *   says one does). A thread that waits for the stream (synchronize, an
 *   event, a full queue) runs the queued tasks it waits for itself when no
 *   one else is running one, so a caller that submits an op and waits pays
 *   for the kernel, not for two thread wake-ups. User host functions are
 *   the exception: they run on the worker only.
 * - A thread with nothing to do spins a little before it parks
 *   (core/spin.h: FLEET_CPU_SPIN_US, and only while a core is free).
 * - Wake-ups go only to a parked thread: the worker is signalled if it
 *   parked, waiters are woken when the count reaches the smallest target a
 *   parked waiter asked for (`wake_at`).
 * The counts are written under the stream's lock and read without it. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_stream.h"
#include "core/atomic.h"
#include "core/error.h"
#include "core/lock.h"
#include "core/prim.h"
#include "core/spin.h"

/* What a task is: a kernel (finite: it never waits for anything), a wait
 * for another stream, or a user host function (runs on the worker only). */
typedef enum { TASK_KERNEL, TASK_WAIT, TASK_HOST } task_kind;

typedef struct cpu_task {
    fleet__cpu_task_fn run;
    unsigned char kind; /* task_kind */
    alignas(16) unsigned char args[FLEET__CPU_TASK_ARGS];
} cpu_task;

struct fleet__cpu_stream {
    int ordinal;
    /* rank 6: guards everything below but the atomics' writes, which it
     * orders (a comment, not FLEET_GUARDED_BY: see core/lock.h on member
     * guards in C). */
    fleet__mutex lock;
    fleet__cond has_work;        /* the worker parks here                  */
    fleet__cond progress;        /* waiters park here                      */
    fleet_atomic_u64 submitted;  /* written under lock, read anywhere      */
    fleet_atomic_u64 completed;
    fleet_atomic_bool executing; /* a thread is running the head task      */
    bool in_kernel;              /* ... and it is a kernel                 */
    uint64_t wake_at;            /* smallest target of a parked waiter     */
    bool worker_parked;
    bool worker_running;
    bool stopping;
    fleet__thread worker;
    cpu_task ring[FLEET__CPU_QUEUE_CAPACITY];
};

#define NO_WAITER UINT64_MAX

/* Every stream ever created, for shutdown and fork. Streams are only created
 * under the runtime's pool locks (rank 3), which the fork handlers take first,
 * so no creation is in flight while we walk the table during fork; shutdown
 * runs alone. */
#define CPU_STREAMS_MAX (32 * 64)
static _Atomic(fleet__cpu_stream *) all_streams[CPU_STREAMS_MAX];
static fleet_atomic_int all_streams_count;

/* Set by fleet__cpu_streams_quiesce_at_exit; no thread takes a task after. */
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

static uint64_t completed_count(fleet__cpu_stream *s)
{
    return fleet_atomic_load_acquire(&s->completed);
}

/* A point in a stream's sequence: what waits (events, spinners, wait tasks)
 * look for. */
typedef struct stream_mark {
    fleet__cpu_stream *stream;
    uint64_t target;
} stream_mark;

/* Worth a look under the lock: the target is reached, or a task waits and
 * no one runs one (the spinner may take it). */
static bool reached_or_takeable(const void *arg)
{
    const stream_mark *w = arg;
    uint64_t done = completed_count(w->stream);
    return done >= w->target || (!fleet_atomic_load_acquire(&w->stream->executing) &&
                                 done < fleet_atomic_load_acquire(&w->stream->submitted));
}

static bool work_queued(fleet__cpu_stream *s)
{
    return completed_count(s) < fleet_atomic_load_acquire(&s->submitted);
}

static bool work_queued_spin(const void *arg)
{
    return work_queued((fleet__cpu_stream *)(uintptr_t)arg);
}

/* May the calling thread run the head task now? (lock held) */
static bool can_take(fleet__cpu_stream *s, bool worker) FLEET_REQUIRES(s->lock)
{
    uint64_t done = fleet_atomic_load_relaxed(&s->completed);
    return done < fleet_atomic_load_relaxed(&s->submitted) &&
           !fleet_atomic_load_relaxed(&s->executing) &&
           !fleet_atomic_load_acquire(&process_exiting) &&
           (worker || s->ring[done % FLEET__CPU_QUEUE_CAPACITY].kind != TASK_HOST);
}

/* Run the head task with the lock released (held on entry and on return). */
static void run_head(fleet__cpu_stream *s) FLEET_REQUIRES(s->lock)
{
    cpu_task task;
    uint64_t done = fleet_atomic_load_relaxed(&s->completed);
    /* The slot stays reserved until completed moves past it, so the
     * producer cannot overwrite it while we run the copy. */
    memcpy(&task, &s->ring[done % FLEET__CPU_QUEUE_CAPACITY], sizeof task);
    fleet_atomic_store_relaxed(&s->executing, true);
    s->in_kernel = task.kind == TASK_KERNEL;
    fleet__spin_busy_enter();
    fleet__mutex_unlock(&s->lock);
    task.run(task.args);
    fleet__mutex_lock(&s->lock);
    fleet__spin_busy_leave();
    fleet_atomic_store_relaxed(&s->executing, false);
    s->in_kernel = false;
    fleet_atomic_store_release(&s->completed, done + 1);
    if (done + 1 >= s->wake_at) {
        s->wake_at = NO_WAITER;
        fleet__cond_broadcast(&s->progress);
    }
}

/* Tasks are queued that the caller will not run: make sure the worker is
 * awake to run them (lock held). */
static void hand_to_worker(fleet__cpu_stream *s) FLEET_REQUIRES(s->lock)
{
    if (s->worker_parked && work_queued(s))
        fleet__cond_signal(&s->has_work);
}

static void *worker_main(void *arg)
{
    fleet__cpu_stream *s = arg;
    bool spun = false;

    fleet__mutex_lock(&s->lock);
    for (;;) {
        if (can_take(s, true)) {
            run_head(s);
            spun = false;
            continue;
        }
        if (s->stopping && !work_queued(s) && !fleet_atomic_load_relaxed(&s->executing) &&
            !fleet_atomic_load_acquire(&process_exiting))
            break; /* stopping and drained */
        if (!spun && !fleet_atomic_load_acquire(&process_exiting)) {
            spun = true;
            fleet__mutex_unlock(&s->lock);
            (void)fleet__spin_until(work_queued_spin, s);
            fleet__mutex_lock(&s->lock);
            continue;
        }
        s->worker_parked = true; /* parked for good once the process exits */
        fleet__cond_wait(&s->has_work, &s->lock);
        s->worker_parked = false;
        spun = false;
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
    s->wake_at = NO_WAITER;
    fleet__mutex_init(&s->lock);
    fleet__cond_init(&s->has_work);
    fleet__cond_init(&s->progress);
    fleet_atomic_store_release(&all_streams[slot], s);
    *out = s;
    return FLEET_OK;
}

/* Wait (lock held) until `s` completed `target` tasks, running them when no
 * one else is, spinning a little before parking. */
static void wait_locked(fleet__cpu_stream *s, uint64_t target) FLEET_REQUIRES(s->lock)
{
    bool spun = false;
    while (fleet_atomic_load_relaxed(&s->completed) < target) {
        if (can_take(s, false)) {
            run_head(s);
            continue;
        }
        hand_to_worker(s); /* a host function at the head, say */
        if (!spun) {
            spun = true;
            stream_mark w = {s, target};
            fleet__mutex_unlock(&s->lock);
            (void)fleet__spin_until(reached_or_takeable, &w);
            fleet__mutex_lock(&s->lock);
            continue;
        }
        if (target < s->wake_at)
            s->wake_at = target;
        fleet__cond_wait(&s->progress, &s->lock);
    }
}

static void wait_completed(fleet__cpu_stream *s, uint64_t target)
{
    if (completed_count(s) >= target)
        return;
    fleet__mutex_lock(&s->lock);
    wait_locked(s, target);
    hand_to_worker(s); /* what is queued after target is the worker's */
    fleet__mutex_unlock(&s->lock);
}

static fleet_status submit(fleet__cpu_stream *s, fleet__cpu_task_fn run, const void *args,
                           size_t args_size, task_kind kind)
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
    uint64_t n = fleet_atomic_load_relaxed(&s->submitted);
    if (n - fleet_atomic_load_relaxed(&s->completed) >= FLEET__CPU_QUEUE_CAPACITY)
        wait_locked(s, n - FLEET__CPU_QUEUE_CAPACITY + 1); /* room for one */
    cpu_task *t = &s->ring[n % FLEET__CPU_QUEUE_CAPACITY];
    t->run = run;
    t->kind = (unsigned char)kind;
    memcpy(t->args, args, args_size);
    fleet_atomic_store_release(&s->submitted, n + 1);
    if (s->worker_parked)
        fleet__cond_signal(&s->has_work);
out:
    fleet__mutex_unlock(&s->lock);
    return st;
}

fleet_status fleet__cpu_stream_submit(fleet__cpu_stream *s, fleet__cpu_task_fn run,
                                      const void *args, size_t args_size)
{
    return submit(s, run, args, args_size, TASK_KERNEL);
}

fleet_status fleet__cpu_stream_submit_host(fleet__cpu_stream *s, fleet__cpu_task_fn run,
                                           const void *args, size_t args_size)
{
    return submit(s, run, args, args_size, TASK_HOST);
}

static bool reached(fleet__cpu_stream *s, uint64_t target)
{
    return completed_count(s) >= target;
}

static uint64_t submitted_now(fleet__cpu_stream *s)
{
    return fleet_atomic_load_acquire(&s->submitted);
}

fleet_status fleet__cpu_stream_synchronize(fleet__cpu_stream *s)
{
    wait_completed(s, submitted_now(s));
    return FLEET_OK;
}

fleet_status fleet__cpu_stream_query(fleet__cpu_stream *s)
{
    return reached(s, submitted_now(s)) ? FLEET_OK : FLEET_ERR_NOT_READY;
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

static void wait_task(const void *p)
{
    const stream_mark *w = p;
    wait_completed(w->stream, w->target);
}

fleet_status fleet__cpu_stream_wait_event(fleet__cpu_stream *s, fleet__cpu_event *e)
{
    stream_mark w;
    snapshot(e, &w.stream, &w.target);
    /* The mark was captured at record time and refers to work already
     * queued, so waits only ever point back in time: no cycles. */
    if (w.stream == NULL || w.stream == s)
        return FLEET_OK;
    return submit(s, wait_task, &w, sizeof w, TASK_WAIT);
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
        while (fleet_atomic_load_relaxed(&s->executing)) {
            if (s->wake_at > fleet_atomic_load_relaxed(&s->completed) + 1)
                s->wake_at = fleet_atomic_load_relaxed(&s->completed) + 1;
            if (!fleet__cond_wait_until(&s->progress, &s->lock, deadline))
                break;
        }
        fleet__mutex_unlock(&s->lock);
    }
}

/* The fork handlers take and release one lock per stream, a number the
 * analysis cannot follow; lifecycle.c pairs them. */
void fleet__cpu_streams_atfork_prepare(void) FLEET_NO_THREAD_SAFETY_ANALYSIS
{
    int n = fleet_atomic_load_acquire(&all_streams_count);
    for (int i = 0; i < n; i++) {
        fleet__cpu_stream *s = registered_stream(i);
        fleet__mutex_lock(&s->lock);
        /* No kernel runs across the fork: a library it calls (OpenBLAS)
         * may hold a lock of its own that the child would find taken for
         * ever. Kernels are finite; waits and host functions are not
         * waited for (they may wait on a stream locked here). Once locked,
         * no stream starts a task. */
        while (s->in_kernel) {
            uint64_t next = fleet_atomic_load_relaxed(&s->completed) + 1;
            if (next < s->wake_at)
                s->wake_at = next;
            fleet__cond_wait(&s->progress, &s->lock);
        }
    }
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
    fleet__spin_reset_in_child();
    fleet__mutex_unlock(&event_lock);
    for (int i = n - 1; i >= 0; i--) {
        fleet__cpu_stream *s = registered_stream(i);
        /* The parent's workers do not exist here. Work still queued belongs
         * to the parent; the child starts each stream empty, with every
         * earlier sequence number complete so old events read as done. */
        fleet_atomic_store_relaxed(&s->completed, fleet_atomic_load_relaxed(&s->submitted));
        fleet_atomic_store_relaxed(&s->executing, false);
        s->in_kernel = false;
        s->wake_at = NO_WAITER;
        s->worker_parked = false;
        s->worker_running = false;
        s->stopping = false;
        /* Condition variables may hold state about parent threads that
         * waited on them; start them afresh. */
        fleet__cond_init(&s->has_work);
        fleet__cond_init(&s->progress);
        fleet__mutex_reset_in_child(&s->lock);
    }
}
