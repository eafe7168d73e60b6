/* verify/cpu_stream.pml — the hand-off of one cpu stream
 * (backend/cpu/cpu_stream.c): a worker and the threads that wait for the
 * stream share its tasks, with no sleep on the hot path.
 *
 * The C code, everything below under the stream's lock unless it says so:
 *   can_take(worker)  completed < submitted, no one executing, and the head
 *                     is not a host function unless the caller is the worker
 *   run_head          executing = 1; unlock; run the head; lock;
 *                     executing = 0; completed++; when completed reaches
 *                     wake_at: wake_at = none, broadcast progress
 *   hand_to_worker    if the worker is parked and tasks are queued: signal
 *   submit            while the queue is full: wait_locked(room for one);
 *                     queue the task; if the worker is parked: signal
 *   wait_locked(t)    until completed >= t: run the head if can_take, else
 *                     hand_to_worker, then spin once (unlocked, a while), or
 *                     park: wake_at = min(wake_at, t), wait on progress
 *   wait_completed(t) completed >= t (read without the lock): done; else
 *                     lock, wait_locked(t), hand_to_worker, unlock
 *   worker            run the head if can_take; else exit if stopping and
 *                     drained; else spin once, or park: worker_parked = 1,
 *                     wait on has_work, worker_parked = 0
 * Condition variables wake only on a signal or broadcast (no spurious
 * wake-ups, which could hide a lost one). Spinning is an unlock and a
 * relock: what it may observe in between is every interleaving.
 *
 * Processes: the worker; caller A submits K kernels (queue capacity 2, so
 * its submits wait for room too), waits for the first, then submits a host
 * function and leaves; caller B records an event at any moment and waits
 * for it; a poller waits for everything without ever running a task (a
 * query loop: the stream must progress on its own); a shutdown at the end. Checked: every task runs exactly once, in
 * order, one at a time, host functions on the worker only; a wait returns
 * only when its target is reached; every process ends (no lost wake-up:
 * an invalid end state is a thread parked for ever). Not modelled: the
 * fork and exit handlers, and the spin budget's core count (a choice here).
 *
 * Broken variants (each must be rejected):
 *   BROKEN_NO_SIGNAL         submit never signals the worker
 *   BROKEN_NO_HAND_BACK      a waiter leaves queued tasks to a parked worker
 *   BROKEN_HELPER_TAKES_HOST a waiter runs a host function
 *   BROKEN_NO_EXECUTING      can_take does not look at `executing`
 *   BROKEN_PARK_FLAG_LATE    the worker says it parked after unlocking
 */

#ifndef K
#define K 3
#endif
#define CAP 2
#define NTASKS (K + 1)
#define NONE 255
#define KERNEL 0
#define HOST 1

bit lock = 0;
byte submitted = 0, completed = 0;
bit executing = 0;
byte wake_at = NONE;
bit worker_parked = 0, stopping = 0;
byte kind[NTASKS];
byte ran[NTASKS];
byte running = 0;            /* threads inside a task now */
bit hw_waiting = 0, hw_sig = 0; /* the has_work condition variable */
byte prog_gen = 0;           /* the progress one: a broadcast generation */
bit a_done = 0, b_done = 0, poll_done = 0, worker_exited = 0;
pid worker_pid;

inline LOCK() { atomic { lock == 0 -> lock = 1 } }
inline UNLOCK() { lock = 0 }

#ifdef BROKEN_HELPER_TAKES_HOST
#define CAN_TAKE(w) (completed < submitted && !executing)
#elif defined(BROKEN_NO_EXECUTING)
#define CAN_TAKE(w) (completed < submitted && (w || kind[completed] != HOST))
#else
#define CAN_TAKE(w) (completed < submitted && !executing && (w || kind[completed] != HOST))
#endif

inline signal_has_work()
{
    if
    :: hw_waiting -> hw_sig = 1
    :: else -> skip
    fi
}

inline run_head()
{
    t = completed;
    executing = 1;
    UNLOCK();
    running++;
    assert(running == 1);
    assert(ran[t] == 0 && (t == 0 || ran[t - 1] == 1));
    assert(kind[t] != HOST || _pid == worker_pid);
    ran[t] = 1;
    running--;
    LOCK();
    executing = 0;
    completed = t + 1;
    if
    :: completed >= wake_at -> wake_at = NONE; prog_gen++
    :: else -> skip
    fi
}

inline hand_to_worker()
{
#ifndef BROKEN_NO_HAND_BACK
    if
    :: worker_parked && completed < submitted -> signal_has_work()
    :: else -> skip
    fi
#else
    skip
#endif
}

inline wait_locked(target)
{
    spun = 0;
    do
    :: completed >= target -> break
    :: else ->
        if
        :: CAN_TAKE(0) -> run_head()
        :: else ->
            hand_to_worker();
            if
            :: !spun -> spun = 1; UNLOCK(); LOCK()
            :: true ->
                if
                :: target < wake_at -> wake_at = target
                :: else -> skip
                fi;
                atomic { gen = prog_gen; UNLOCK() };
                prog_gen != gen;
                LOCK()
            fi
        fi
    od
}

inline wait_completed(target)
{
    if
    :: completed >= target -> skip
    :: else ->
        LOCK();
        wait_locked(target);
        hand_to_worker();
        UNLOCK()
    fi;
    assert(completed >= target)
}

inline submit(k)
{
    LOCK();
    if
    :: submitted - completed >= CAP -> room = submitted - CAP + 1; wait_locked(room)
    :: else -> skip
    fi;
    assert(submitted - completed < CAP);
    kind[submitted] = k;
    submitted++;
#ifndef BROKEN_NO_SIGNAL
    if
    :: worker_parked -> signal_has_work()
    :: else -> skip
    fi;
#endif
    UNLOCK()
}

active proctype worker()
{
    byte t;
    bit spun = 0;
    worker_pid = _pid;
    LOCK();
    do
    :: CAN_TAKE(1) -> run_head(); spun = 0
    :: else ->
        if
        :: stopping && completed == submitted && !executing -> break
        :: else ->
            if
            :: !spun -> spun = 1; UNLOCK(); LOCK()
            :: true ->
#ifdef BROKEN_PARK_FLAG_LATE
                atomic { hw_waiting = 1; UNLOCK() };
                worker_parked = 1;
#else
                worker_parked = 1;
                atomic { hw_waiting = 1; UNLOCK() };
#endif
                atomic { hw_sig == 1 -> hw_sig = 0; hw_waiting = 0 };
                LOCK();
                worker_parked = 0;
                spun = 0
            fi
        fi
    od;
    UNLOCK();
    worker_exited = 1
}

active proctype caller_a()
{
    byte t, i = 0, room, gen, target;
    bit spun;
    do
    :: i < K -> submit(KERNEL); i++
    :: else -> break
    od;
    target = 1;
    wait_completed(target); /* the first kernel's result */
    submit(HOST);           /* and leave the rest to the stream */
    a_done = 1
}

active proctype caller_b()
{
    byte t, gen, target;
    bit spun;
    target = submitted; /* an event recorded at any moment */
    wait_completed(target);
    b_done = 1
}

/* A thread that polls (fleet_stream_query) until everything has run: it
 * never runs a task itself, so the stream must make progress on its own. */
active proctype poller()
{
    a_done;
    completed == NTASKS;
    poll_done = 1
}

active proctype shutdown()
{
    a_done && b_done && poll_done;
    LOCK();
    stopping = 1;
    signal_has_work();
    UNLOCK();
    worker_exited;
    assert(completed == NTASKS && ran[NTASKS - 1] == 1)
}
