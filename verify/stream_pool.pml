/* verify/stream_pool.pml — Spin model of fleet's stream-slot protocol.
 *
 * ABSTRACTS (src/runtime/stream_pool.c, src/runtime/device.h)
 *   try_take_free     seq_cst load of `taken`, then a CAS loop: free bits =
 *                     ~taken & mask, search upward from `next_hint` (wrapping
 *                     to the lowest free bit), CAS the bit in; on success
 *                     store next_hint and the slot's `hold`.
 *   release_slot      hold = NONE, fetch_and clearing the bit (asserting it
 *                     was set), then, if `waiters` > 0, lock + broadcast +
 *                     unlock.
 *   wait_for_slot     lock; waiters++; loop { try_take_free; cond wait (or
 *                     timed wait: on timeout one more try_take_free, then
 *                     FLEET_ERR_POOL_EXHAUSTED) }; waiters--; unlock.
 *   bind_thread       take a free slot; else, FLEET_STREAM_WAIT_MS == 0:
 *                     share slot 1 + (share_cursor++ % (capacity-1)); else
 *                     wait_for_slot(wait_ms).
 *   fleet__stream_pool_thread_exit   release the exclusive slot of the
 *                     exiting thread (or drop its shared binding).
 *   acquire / fleet_stream_release   try_take_free(ACQUIRED), else error
 *                     (timeout 0) or wait_for_slot; release = CAS hold
 *                     ACQUIRED -> NONE (else FLEET_ERR_INVALID_ARGUMENT),
 *                     then release_slot.
 *
 * HOW (what is abstracted away, and why that is sound)
 *   - One device, NT = 3 threads, two configurations (run-spin.sh runs both):
 *     A: -DCAP=3 (default stream + pool slots 1 and 2), thread 0 runs
 *        ROUNDS0 = 2 rounds, threads 1 and 2 ROUNDS = 1: one thread more than
 *        slots, a slot reused by a later round;
 *     B: -DCAP=2 (one pool slot), 2 rounds each: two threads can wait at
 *        once, so the broadcast (not a signal) matters.
 *     A round is one thread life (bind ... thread exit) or one acquire ...
 *     release ... double release, chosen nondeterministically. Every path
 *     (take, CAS retry, share, wait, timeout, wakeup) is reachable.
 *   - Granularity: each atomic block holds one access to shared pool state
 *     plus thread-local work and ghost updates, so the interleavings are
 *     those of the C code, except for these merges, each of a lock-protected
 *     or invisible step with its neighbour (Lipton reduction: acquiring a
 *     lock moves right, releasing one moves left): lock + waiters++;
 *     waiters-- + unlock; lock + broadcast + unlock (nothing else is touched
 *     while held); "woken" + relock (the woken thread only waits); and
 *     release_slot's relaxed hold = NONE + the fetch_and (hold is read only
 *     by the hold CAS of fleet_stream_release, which fails on NONE and on
 *     BOUND alike, the take's assert, which needs the bit clear first, and
 *     statistics).
 *   - Memory model: Spin explores sequentially consistent interleavings. The C
 *     code makes every access the protocol relies on seq_cst (the `taken`
 *     load/CAS/fetch_and and the `waiters` increment/load: the Dekker pair that
 *     prevents the lost wakeup); the relaxed ones (next_hint, hold,
 *     share_cursor, counters) only steer the search or are ordered by the
 *     acq_rel CAS on `taken` that follows/precedes them. The relaxed
 *     next_hint load is modelled as an arbitrary value in 1..capacity-1, which is
 *     what any stale value is; so `next_hint` itself is not stored (the
 *     search start is chosen nondeterministically at every look).
 *   - share_cursor is a u32 used modulo capacity-1; the model keeps it modulo
 *     capacity-1 (same slot sequence, bounded state).
 *   - The mutex is a test-and-set on `lock`; the condition variable is one
 *     `asleep` flag per thread: cond_wait atomically sets it and unlocks (as
 *     pthread_cond_wait does), broadcast clears them all, the woken thread
 *     relocks. Spurious wakeups are not modelled: they only add wakeups, and
 *     the C code re-checks in a loop, so they cannot hide a lost wakeup. A
 *     timed wait may time out at any moment (even when also woken), which
 *     covers every deadline.
 *   - Statistics counters (waits_total, ...) and lazy backend-stream creation
 *     (pool lock, no effect on `taken`) are left out.
 *
 * PROPERTIES
 *   P1 mutual exclusion: a slot never has two exclusive owners (ghost
 *      owner[]; asserted when a thread starts to hold a slot) and a freshly
 *      taken slot has hold == NONE; release_slot's "bit was set" assert.
 *   P2 no lost wakeup / no waiter starves while slots are free:
 *      safety runs: every thread terminates, so a waiter left asleep shows as
 *      an invalid end state (pan's deadlock check);
 *      liveness run (-DLTL_NOLOST, wait = -1, pan -a -f, weak fairness):
 *      [] (asleep[i] && a bit is free -> <> !asleep[i]) for every thread.
 *      This is not FIFO fairness: a thread on the fast path may take a freed
 *      slot before the woken waiter relocks (barging); the waiter then sleeps
 *      again, legitimately, because no slot is free.
 *   P3 release at thread exit: when all threads have ended, taken == 0,
 *      waiters == 0, shared_bindings == 0 and every hold is NONE (init).
 *   P4 double release of an acquired stream is refused (the hold CAS), in
 *      every state where that slot was not re-acquired meanwhile (see
 *      CHECK_STALE_RELEASE).
 *
 * MODES (exactly one; default WAIT_INF)
 *   -DWAIT_INF    FLEET_STREAM_WAIT_MS = -1, acquire timeout -1
 *   -DWAIT_TIMED  FLEET_STREAM_WAIT_MS > 0, acquire timeout > 0
 *   -DWAIT_SHARE  FLEET_STREAM_WAIT_MS = 0 (round-robin sharing), acquire
 *                 timeout 0 or -1
 *
 * BROKEN VARIANTS (Spin must report an error)
 *   -DBROKEN_PLAIN_TAKE        take = plain load + store instead of CAS (P1)
 *   -DBROKEN_NO_WAKE           release clears the bit without the waiters
 *                              check / broadcast (P2)
 *   -DBROKEN_UNLOCKED_BROADCAST  broadcast without taking the pool lock (P2)
 *   -DBROKEN_WAITERS_FIRST     release reads `waiters` before clearing the
 *                              bit (P2)
 *   -DBROKEN_LATE_ANNOUNCE     the waiter increments `waiters` after its
 *                              first look, not before (P2)
 *   -DBROKEN_NO_EXIT_RELEASE   thread exit forgets the exclusive slot (P3)
 *   -DBROKEN_RELEASE_NO_CAS    fleet_stream_release without the hold CAS:
 *                              a double release clears the bit again (P4/P1)
 *   -DCHECK_STALE_RELEASE      not a code mutation: asserts that a double
 *                              release is refused even after another thread
 *                              re-acquired the slot. Spin shows it is not:
 *                              the fleet_stream* handle has no generation, so
 *                              a late second release frees the new holder's
 *                              slot (an API limitation, not a protocol bug).
 *
 * THE SAME INVARIANTS IN THE C CODE (debug builds, FLEET_DEBUG_INVARIANTS)
 *   release_slot     FLEET_ASSERT: the bit was set before the fetch_and.
 *   try_take_free    FLEET_DEBUG_ASSERT: hold == NONE right after the CAS.
 *   fleet__stream_pool_thread_exit  FLEET_DEBUG_ASSERT: hold == BOUND before
 *                    the exclusive slot is released.
 */

#define NT 3                     /* threads                               */
#ifndef CAP
#define CAP 3                    /* capacity: default stream + 2 slots    */
#endif
#define MASK ((1 << CAP) - 2)    /* bits 1..CAP-1                         */
#define BIT(s) (1 << (s))

#ifndef ROUNDS
#define ROUNDS 1                 /* rounds of threads 1 and 2             */
#endif
#ifndef ROUNDS0
#define ROUNDS0 2                /* rounds of thread 0                    */
#endif

#if !defined(WAIT_INF) && !defined(WAIT_TIMED) && !defined(WAIT_SHARE)
#define WAIT_INF
#endif

#define NONE 0
#define BOUND 1
#define ACQUIRED 2

/* timeout kinds of a wait */
#define T_ZERO 0
#define T_INF 1
#define T_TIMED 2

/* ---- shared state (the pool) ---- */
byte taken;                      /* pool->taken (bits 1..CAP-1)           */
byte share_cursor;               /* modulo CAP-1                          */
byte waiters;
byte lock;                       /* pool->lock: 0 or holder pid + 1       */
bool asleep[NT];                 /* pool->freed: waiting in cond wait     */
byte hold[CAP];                  /* streams[i].hold                       */
byte shared_bindings;

/* ---- ghost state ---- */
byte owner[CAP];                 /* exclusive user of a slot: thread + 1  */
byte acq_epoch[CAP];             /* ACQUIRED hand-outs of a slot so far   */

#define FREE_SLOT ((taken & MASK) != MASK)

inline lock_acquire() { atomic { lock == 0 -> lock = me + 1 } }

inline broadcast() { d_step { asleep[0] = 0; asleep[1] = 0; asleep[2] = 0 } }

/* fleet__cond_wait: unlock and sleep atomically; once woken, relock. (The
 * woken thread only waits for the lock: asleep[me] cannot become 1 again
 * meanwhile, so "woken" and "relocked" form one step.) */
inline cond_wait() {
    atomic { asleep[me] = 1; lock = 0 };
    atomic { asleep[me] == 0 && lock == 0 -> lock = me + 1 }
}

/* fleet__cond_wait_until: as cond_wait, but may time out at any moment,
 * woken or not; woke = false on timeout. */
inline cond_wait_until(woke) {
    atomic { asleep[me] = 1; lock = 0 };
    if
    :: atomic { asleep[me] == 0 && lock == 0 -> lock = me + 1; woke = 1 }
    :: atomic { lock == 0 -> asleep[me] = 0; lock = me + 1; woke = 0 }  /* deadline */
    fi
}

/* try_take_free(pool, hk): res = slot, or 0 when every slot is taken. On
 * success the caller owns the slot (ghost) and, for ACQUIRED, myepoch is
 * the slot's acquisition number. Each atomic block holds one access to the
 * pool's shared state (plus thread-local work and ghost updates), so the
 * interleavings are those of the C code. */
inline try_take_free(hk, res) {
    atomic { t = taken; fb = ~t & MASK }         /* seq_cst load */
    do
    :: fb == 0 -> res = 0; t = 0; break
    :: else ->
       atomic {
           if                                    /* relaxed next_hint: any */
           :: start = 1                          /* value 1..CAP-1 (HOW)   */
           :: CAP > 2 -> start = 2
           fi;
           x = fb & (255 << start);              /* `above` */
           if
           :: x == 0 -> x = fb
           :: else
           fi;
           res = 1;
           do                                    /* ctz */
           :: (x & BIT(res)) == 0 -> res++
           :: else -> break
           od;
           start = 0;
           x = 0;
#ifdef BROKEN_PLAIN_TAKE
           taken = t | BIT(res);                 /* plain store of a stale view */
           ok = 1;
#else
           if                                    /* CAS acq_rel */
           :: taken == t -> taken = t | BIT(res); ok = 1
           :: else -> t = taken; fb = ~t & MASK; ok = 0
           fi;
#endif
           if
           :: ok -> t = 0; fb = 0
           :: else
           fi
       }
       if
       :: atomic {
              ok ->
              ok = 0;
              assert(hold[res] == NONE);         /* a free slot has no holder */
              hold[res] = hk;                    /* relaxed store */
              if
              :: hk == ACQUIRED -> acq_epoch[res]++; myepoch = acq_epoch[res]
              :: else
              fi;
              assert(owner[res] == 0);           /* P1 */
              owner[res] = me + 1
          };
          break
       :: else
       fi
    od
}

/* The exclusive owner's release_slot(pool, s); exit_hold: the hold it
 * finds (BOUND at thread exit, NONE after fleet_stream_release's CAS). The
 * relaxed store of hold = NONE is merged with the fetch_and (see HOW). */
inline release_slot(s, exit_hold) {
#ifdef BROKEN_WAITERS_FIRST
    atomic { w = waiters };
#endif
    atomic {
        assert(owner[s] == me + 1);              /* ghost: stop using it */
        owner[s] = 0;
        assert(hold[s] == exit_hold);
        hold[s] = NONE;
        assert((taken & BIT(s)) != 0);           /* fetch_and seq_cst */
        taken = taken & ~BIT(s)
    };
#ifndef BROKEN_NO_WAKE
#ifdef BROKEN_WAITERS_FIRST
    if
    :: w > 0 -> w = 0;
#else
    if
    :: waiters > 0 ->                            /* seq_cst load */
#endif
#ifndef BROKEN_UNLOCKED_BROADCAST
       /* lock, broadcast, unlock: nothing else is touched while the lock
        * is held, so this is one step that waits for the lock */
       atomic { lock == 0 -> broadcast() }
#else
       broadcast()
#endif
    :: else -> w = 0
    fi
#endif
}

/* wait_for_slot(device, tk, hk, &res); res == 0: FLEET_ERR_POOL_EXHAUSTED */
inline wait_for_slot(tk, hk, res) {
#ifndef BROKEN_LATE_ANNOUNCE
    atomic { lock == 0 -> lock = me + 1; waiters++ }
#else
    atomic { lock == 0 -> lock = me + 1 }
#endif
    do
    :: try_take_free(hk, res);
       if
       :: res != 0 -> break
       :: else
       fi;
#ifdef BROKEN_LATE_ANNOUNCE
       if
       :: !announced -> waiters++; announced = 1
       :: else
       fi;
#endif
       if
       :: tk == T_INF -> cond_wait()
       :: else ->
          cond_wait_until(woke);
          if
          :: !woke -> try_take_free(hk, res); break
          :: else
          fi
       fi
    od;
    atomic {
        assert(lock == me + 1);
#ifdef BROKEN_LATE_ANNOUNCE
        if
        :: announced -> waiters--; announced = 0
        :: else
        fi;
#else
        waiters--;
#endif
        lock = 0;
        woke = 0
    }
}

/* fleet_stream_release's check: CAS hold ACQUIRED -> NONE. */
inline stream_release_cas(s, ok) {
#ifdef BROKEN_RELEASE_NO_CAS
    hold[s] = NONE;                              /* unconditional store */
    ok = 1
#else
    if
    :: hold[s] == ACQUIRED -> hold[s] = NONE; ok = 1
    :: else -> ok = 0
    fi
#endif
}

proctype thread(byte me; byte rounds)
{
    byte t, fb, start, x, res, w, round, tk, myepoch;
    bool ok, woke, announced;

    do
    :: round < rounds ->
       round++;
       if
       :: /* ---- one thread life: bind_thread ... thread exit ---------- */
          try_take_free(BOUND, res);
          if
          :: res != 0
#ifdef WAIT_SHARE
          :: else ->                             /* share round-robin */
             atomic {
                 res = 1 + share_cursor;
                 share_cursor = (share_cursor + 1) % (CAP - 1);
                 shared_bindings++
             }
             /* ... the thread runs on the shared stream res ... */
             atomic { shared_bindings--; res = 0 }   /* thread exit */
#elif defined(WAIT_INF)
          :: else -> wait_for_slot(T_INF, BOUND, res)
#else
          :: else -> wait_for_slot(T_TIMED, BOUND, res)
#endif
          fi;
          if
          :: res != 0 ->
             /* ... the thread runs on its own stream res; then it exits:
              * fleet__stream_pool_thread_exit ... */
#ifndef BROKEN_NO_EXIT_RELEASE
             release_slot(res, BOUND);
#else
             atomic { owner[res] = 0 };
#endif
             res = 0
          :: else                                /* shared, or timed out */
          fi
       :: /* ---- fleet_stream_acquire ... fleet_stream_release, twice ---- */
#if defined(WAIT_INF)
          tk = T_INF;
#elif defined(WAIT_TIMED)
          tk = T_TIMED;
#else
          if
          :: tk = T_ZERO
          :: tk = T_INF
          fi;
#endif
          try_take_free(ACQUIRED, res);
          if
          :: res == 0 && tk != T_ZERO -> wait_for_slot(tk, ACQUIRED, res)
          :: else                                /* got one, or timeout 0 */
          fi;
          if
          :: res != 0 ->
             /* ... the stream is used, then released ... */
             atomic {
                 stream_release_cas(res, ok);
                 assert(ok)                      /* the first release works */
             };
             release_slot(res, NONE);
             /* the double release */
#ifdef CHECK_STALE_RELEASE
             atomic { stream_release_cas(res, ok); assert(!ok) };
#else
             if
             :: atomic {                         /* while not re-acquired */
                    acq_epoch[res] == myepoch ->
                    stream_release_cas(res, ok);
                    assert(!ok)                  /* P4 */
                }
             :: atomic { acq_epoch[res] != myepoch -> ok = 0 }  /* see header */
             fi;
#endif
             d_step { res = 0; myepoch = 0; tk = 0 }
          :: else -> tk = 0
          fi
       fi
    :: else -> break
    od
}

init {
    atomic {
        run thread(0, ROUNDS0);
        run thread(1, ROUNDS);
        run thread(2, ROUNDS)
    }
    /* P3: every thread has ended (a waiter asleep forever blocks this and
     * shows as an invalid end state) */
    _nr_pr == 1;
    assert(taken == 0);
    assert(waiters == 0);
    assert(shared_bindings == 0);
    assert(lock == 0);
    assert(hold[1] == NONE && hold[CAP - 1] == NONE)
}

#ifdef LTL_NOLOST
/* P2 as liveness: a sleeping waiter is woken whenever a slot is free. */
ltl nolost {
    [] ((asleep[0] && FREE_SLOT) -> <> !asleep[0]) &&
    [] ((asleep[1] && FREE_SLOT) -> <> !asleep[1]) &&
    [] ((asleep[2] && FREE_SLOT) -> <> !asleep[2])
}
#endif
