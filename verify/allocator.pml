/* verify/allocator.pml — Spin model of one shard of fleet's caching
 * allocator: free/reuse with generations and record_stream events.
 *
 * ABSTRACTS (src/runtime/allocator.c)
 *   fleet_memory_alloc -> try_alloc     under the shard lock: reclaim_pending,
 *                     best fit among FREE blocks, else grow (a SPARE metadata
 *                     block becomes a FREE segment: reserved += size, cached +=
 *                     size), then hand_out (ALLOCATED, generation++, uses = 0,
 *                     cached -> allocated).
 *   alloc_slow        the OOM cascade: fleet__device_synchronize (wait until
 *                     every stream passed its work), release_everywhere(true)
 *                     (reclaim_pending + release_free_segments), retry.
 *   fleet_memory_record_stream   check_handle under the lock, uses |= stream.
 *   fleet_memory_free check_handle (generation == handle generation and
 *                     state == ALLOCATED, else FLEET_ERR_STALE_HANDLE); no uses:
 *                     make_free (FREE at once, stream-ordered); uses:
 *                     retire_recorded (one event per using stream, PENDING,
 *                     on the pending list) or, when an event cannot be
 *                     recorded, retire_after_sync (synchronize that stream
 *                     with no lock held, then put the block on the list).
 *   reclaim_pending   a listed PENDING block whose events all passed (query
 *                     != NOT_READY) becomes FREE (pending -> cached).
 *   release_everywhere / release_free_segments / recycle_block
 *                     under the lock: note free_seq; without it: an event on
 *                     stream A, waited for (empty_cache, OOM step 2) or
 *                     queried (OOM step 1: not passed means skip); under the
 *                     lock again: a FREE whole-segment block whose last free
 *                     came at or before the noted free_seq goes back to SPARE,
 *                     generation++ (cached, reserved -= size).
 *   SHARD_CHECK       allocated + pending + cached == reserved.
 *
 * HOW (what is abstracted away, and why that is sound)
 *   - One shard (stream A's) with NB = 2 metadata blocks, each of unit size:
 *     a block is a whole segment. Carving and merging are not modelled: they
 *     move bytes between FREE blocks under the lock (cached unchanged) and
 *     return absorbed metadata to SPARE with generation++, which is the same
 *     transition as release_free_segments' recycle_block, which is modelled.
 *     Best fit = any FREE block (nondeterministic). Other shards never touch
 *     this shard's blocks (a block never moves shard), except through the
 *     shard lock, which the stale thread models.
 *   - Streams as counters: stream B has b_enq (work submitted) and b_done
 *     (work finished); an event recorded on B is the value of b_enq at record
 *     time and has passed when b_done >= it. Stream A, the shard's own, is
 *     modelled the same way (a_enq, a_done): its work is stream-ordered with
 *     A's later allocations (the premise of "free at once"), but a segment
 *     returned to the backend is gone for work A has still queued.
 *   - Each region under the shard lock touches lock-protected state plus at
 *     most one access to state outside it (b_enq at record time, b_done per
 *     event query), so each is one atomic step, except reclaim_pending, which
 *     queries each block's event in a step of its own (b_done may advance in
 *     between, as on a device). fleet__device_synchronize waits for b_done ==
 *     b_enq. Backend failures of event_record are a nondeterministic choice
 *     (they select retire_after_sync); segment_alloc failures are not
 *     modelled beyond "no SPARE metadata left" (both lead to the same
 *     cascade).
 *   - Processes (3): the owner thread on stream A (ROUNDS rounds of alloc,
 *     optionally: launch work on B that uses the block + record_stream(B),
 *     then free; it passes a copy of the handle to the other thread either
 *     just before its free (a live copy: the two frees race, exactly one may
 *     succeed) or after it (a stale copy)), a second thread on stream A that
 *     holds such copies (STALE_TRIES times one of: free it or record a stream
 *     with it; allocate and free a block of its own, stream-ordered; empty
 *     the cache), and stream B's progress.
 *
 * PROPERTIES
 *   A1 a block is handed out only when FREE, with no event, not listed and
 *      no uses (the C asserts this in hand_out), never while a live handle
 *      holds it (ghost live[]) and never while stream B may still touch it
 *      (ghost busy_until[]: b_done must have passed B's last work on it).
 *   A2 a stale handle never frees (or records a stream on) a block that was
 *      reused or is no longer allocated: every successful check_handle is
 *      for the block's live hand-out (ghost serial[], live[]); of two frees
 *      of one hand-out exactly one succeeds.
 *   A3 accounting: allocated + pending + cached == reserved after every
 *      region under the lock, and at the end.
 *   A4 a segment goes back to the backend only after stream A passed every
 *      piece of work that used its block (ghost busy_a[]), and stream B too.
 *   The search also checks that no process is stuck (invalid end states):
 *   retire_after_sync and the cascade's synchronize always return.
 *
 * THE SAME INVARIANTS IN THE C CODE (debug builds, FLEET_DEBUG_INVARIANTS)
 *   SHARD_CHECK      FLEET_DEBUG_ASSERT of A3 after every change under the lock.
 *   check_handle     the generation + state check itself (always on: it is the
 *                    FLEET_ERR_STALE_HANDLE path).
 *   hand_out         FLEET_DEBUG_ASSERT: state FREE, no events, not listed, no
 *                    uses.
 *   fleet_memory_free  FLEET_DEBUG_ASSERT: a live block has no events and is
 *                    not listed.
 *   reclaim_pending  FLEET_DEBUG_ASSERT: every listed block is PENDING.
 *
 * NOTE recycle_block's generation++ is not needed for A2 in this model (a
 * variant without it passes): hand_out's generation++ and the state check
 * already refuse every stale handle. It is defence in depth.
 *
 * BROKEN VARIANTS (Spin must report an error)
 *   -DBROKEN_NO_GENERATION     check_handle compares the state only (A2)
 *   -DBROKEN_NO_STATE_CHECK    check_handle compares the generation only:
 *                              a double free of a FREE block (A2, A3)
 *   -DBROKEN_HANDOUT_NO_BUMP   hand_out keeps the generation (A2)
 *   -DBROKEN_RECLAIM_NO_WAIT   reclaim_pending frees without its events (A1)
 *   -DBROKEN_IGNORE_USES       free ignores record_stream: FREE at once (A1)
 *   -DBROKEN_LIST_BEFORE_SYNC  retire_after_sync lists the block before the
 *                              synchronize (A1)
 *   -DBROKEN_RELEASE_NO_WAIT   release_everywhere gives segments back without
 *                              waiting for stream A (A4)
 *   -DBROKEN_RELEASE_LATE_SEQ  free_seq noted after the event, not before: a
 *                              block freed in between is released (A4)
 */

#define NB 2
#ifndef ROUNDS
#define ROUNDS 3
#endif
#ifndef STALE_TRIES
#define STALE_TRIES 2
#endif

#define SPARE 0
#define FREE 1
#define ALLOCATED 2
#define PENDING 3

/* ---- the shard (protected by `lock`) ---- */
byte lock;                       /* 0 or holder pid + 1 */
byte state[NB];
byte gen[NB];                    /* generation */
bool uses[NB];                   /* stream B recorded (bit B of `uses`) */
bool hasev[NB];                  /* an event on B is in `events` */
byte ev[NB];                     /* ... recorded when b_enq was this */
bool onlist[NB];                 /* on pending_list */
byte allocated, pending, cached, reserved;

/* ---- streams A (the shard's) and B ---- */
byte b_enq, b_done;
byte a_enq, a_done;
byte free_seq;                   /* the shard's count of blocks becoming FREE */
byte freed_at[NB];               /* free_seq at the block's last free */

/* ---- the leaked (stale) handle copy ---- */
bool leak_valid;
byte leak_blk, leak_gen, leak_serial;
bool owner_done, stale_done;

/* ---- ghost ---- */
byte serial[NB];                 /* hand-out number of the block's hand-out */
byte serials;
bool live[NB];                   /* a live handle holds the block */
byte busy_until[NB];             /* stream B touches it until b_done >= this */
byte busy_a[NB];                 /* stream A touches it until a_done >= this */

#define ACCT assert(allocated + pending + cached == reserved)

#if defined(BROKEN_NO_GENERATION)
#define HANDLE_OK(b, g) (state[b] == ALLOCATED)
#elif defined(BROKEN_NO_STATE_CHECK)
#define HANDLE_OK(b, g) (gen[b] == g)
#else
#define HANDLE_OK(b, g) (gen[b] == g && state[b] == ALLOCATED)
#endif

inline lock_acquire() { atomic { lock == 0 -> lock = _pid + 1 } }
inline lock_release() { assert(lock == _pid + 1); lock = 0 }

/* reclaim_pending: one event query per step. */
inline reclaim_one(i) {
    atomic {
        if
#ifdef BROKEN_RECLAIM_NO_WAIT
        :: state[i] == PENDING && onlist[i] ->
#else
        :: state[i] == PENDING && onlist[i] && (!hasev[i] || b_done >= ev[i]) ->
#endif
           hasev[i] = 0; ev[i] = 0; onlist[i] = 0;
           pending--; cached++;
           state[i] = FREE;                     /* make_free */
           free_seq++; freed_at[i] = free_seq
        :: else
        fi;
        ACCT
    }
}
inline reclaim_pending() { reclaim_one(0); reclaim_one(1) }

/* release_free_segments(seen): FREE -> SPARE (recycle_block:
 * generation++) for blocks freed at or before `seen`, once `passed`. */
inline release_free_segments() {
    atomic {
        i = 0;
        do
        :: i < NB ->
           if
#ifdef BROKEN_RELEASE_NO_WAIT
           :: state[i] == FREE ->
#else
           :: state[i] == FREE && passed && freed_at[i] <= seen ->
#endif
              assert(a_done >= busy_a[i] && b_done >= busy_until[i]);   /* A4 */
              state[i] = SPARE; gen[i]++; cached--; reserved--
           :: else
           fi;
           i++
        :: else -> i = 0; break
        od;
        ACCT
    }
}

/* release_everywhere for this shard: `wait` 1 waits for stream A to pass
 * the event (empty_cache, OOM step 2), 0 only queries it (OOM step 1).
 * With `reclaim`, pending blocks whose events passed are freed first. */
inline release_everywhere(reclaim, wait) {
    lock_acquire();
    if
    :: reclaim -> reclaim_pending()
    :: else
    fi;
#ifndef BROKEN_RELEASE_LATE_SEQ
    d_step { seen = free_seq };
#endif
    lock_release();
    atomic { tgt = a_enq };                      /* event_record on A */
#ifdef BROKEN_RELEASE_LATE_SEQ
    d_step { seen = free_seq };
#endif
    if
    :: wait -> a_done >= tgt; passed = 1         /* event_synchronize */
    :: else -> atomic { passed = (a_done >= tgt) }   /* event_query */
    fi;
    lock_acquire();
    release_free_segments();
    lock_release();
    d_step { passed = 0; seen = 0; tgt = 0 }
}

/* try_alloc after reclaim_pending: best fit, else grow, then hand_out.
 * got = success; blk/g/sr = the handle (block, generation, ghost serial). */
inline pick_and_hand_out() {
    atomic {
        if
        :: state[0] == FREE -> blk = 0
        :: state[1] == FREE -> blk = 1
        :: else ->
           if                                    /* grow */
           :: state[0] == SPARE -> blk = 0
           :: state[1] == SPARE -> blk = 1
           :: else -> blk = NB                   /* GROW_HOST / LIMIT */
           fi;
           if
           :: blk < NB -> state[blk] = FREE; reserved++; cached++
           :: else
           fi
        fi;
        if
        :: blk < NB ->
           /* hand_out */
           assert(state[blk] == FREE && !hasev[blk] && !onlist[blk] && !uses[blk]);
           assert(!live[blk]);                   /* A1 */
           assert(b_done >= busy_until[blk]);    /* A1 */
           state[blk] = ALLOCATED;
#ifndef BROKEN_HANDOUT_NO_BUMP
           gen[blk]++;
#endif
           uses[blk] = 0;
           cached--; allocated++;
           serials++; serial[blk] = serials; live[blk] = 1;
           g = gen[blk]; sr = serials;
           got = 1;
           ACCT
        :: else -> got = 0
        fi
    }
}

/* fleet_memory_free(handle blk/g/sr): ok = status OK; unrec: the event
 * could not be recorded and the block waits for retire_after_sync. */
inline mem_free() {
    lock_acquire();
    atomic {
        if
        :: HANDLE_OK(blk, g) ->
           assert(live[blk] && serial[blk] == sr);   /* A2 */
           live[blk] = 0;
#ifndef BROKEN_IGNORE_USES
           if
           :: uses[blk] ->                       /* retire_recorded */
              if
              :: hasev[blk] = 1; ev[blk] = b_enq; unrec = 0   /* event_record */
              :: hasev[blk] = 0; unrec = 1                    /* it failed */
              fi;
              uses[blk] = 0;
              state[blk] = PENDING;
              allocated--; pending++;
#ifndef BROKEN_LIST_BEFORE_SYNC
              onlist[blk] = !unrec
#else
              onlist[blk] = 1
#endif
           :: else ->
#endif
              uses[blk] = 0;
              allocated--; cached++;
              state[blk] = FREE;                 /* make_free */
              free_seq++; freed_at[blk] = free_seq
#ifndef BROKEN_IGNORE_USES
           fi;
#endif
           ok = 1;
           ACCT
        :: else -> ok = 0                        /* FLEET_ERR_STALE_HANDLE */
        fi;
        lock_release()
    };
    if
    :: unrec ->                                  /* retire_after_sync */
       atomic { tgt = b_enq };                   /* stream_synchronize(B) */
       b_done >= tgt;
#ifndef BROKEN_LIST_BEFORE_SYNC
       lock_acquire();
       atomic { onlist[blk] = 1; unrec = 0; tgt = 0; lock_release() }
#else
       d_step { unrec = 0; tgt = 0 }             /* listed already */
#endif
    :: else
    fi
}

/* fleet_memory_record_stream(handle, B) */
inline record_stream() {
    lock_acquire();
    atomic {
        if
        :: HANDLE_OK(blk, g) ->
           assert(live[blk] && serial[blk] == sr);   /* A2 */
           uses[blk] = 1;
           ok = 1
        :: else -> ok = 0
        fi;
        lock_release()
    }
}

proctype owner()
{
    byte r, i, blk, g, sr, tgt, seen;
    bool got, ok, unrec, early, passed;

    do
    :: r < ROUNDS ->
       r++;
       /* fleet_memory_alloc */
       lock_acquire();
       reclaim_pending();
       pick_and_hand_out();
       lock_release();
       if
       :: !got ->                                /* alloc_slow, step 1 */
          release_everywhere(0, 0);
          lock_acquire();
          reclaim_pending();
          pick_and_hand_out();
          lock_release()
       :: else
       fi;
       if
       :: !got ->                                /* step 2 */
          b_done == b_enq && a_done == a_enq;    /* fleet__device_synchronize */
          release_everywhere(1, 1);
          lock_acquire();
          reclaim_pending();
          pick_and_hand_out();
          lock_release()
       :: else
       fi;
       if
       :: got ->
          atomic { a_enq++; busy_a[blk] = a_enq };   /* work on A uses it */
          if
          :: /* launch work on stream B that uses the block, record B */
             atomic { b_enq++; busy_until[blk] = b_enq };
             record_stream();
             assert(ok)
          :: skip
          fi;
          if
          :: /* a copy of the live handle goes to the other thread, which
              * may free it first (then this free must fail) */
             atomic { leak_blk = blk; leak_gen = g; leak_serial = sr; leak_valid = 1; early = 1 }
          :: skip
          fi;
          mem_free();
          assert(ok || early);
          /* the thread keeps (or passes on) a copy of the freed handle */
          atomic {
              leak_blk = blk; leak_gen = g; leak_serial = sr; leak_valid = 1;
              blk = 0; g = 0; sr = 0; got = 0; ok = 0; early = 0
          }
       :: else                                   /* FLEET_ERR_OUT_OF_MEMORY */
       fi
    :: else -> break
    od;
    owner_done = 1
}

proctype stale()
{
    byte k, i, blk, g, sr, tgt, seen;
    bool got, ok, unrec, passed;

    do
    :: k < STALE_TRIES ->
       k++;
       if
       :: /* a stale copy of a freed handle */
          atomic { leak_valid -> blk = leak_blk; g = leak_gen; sr = leak_serial };
          if
          :: mem_free()                          /* A2 checks a success */
          :: record_stream()
          fi;
          d_step { blk = 0; g = 0; sr = 0; ok = 0 }
       :: /* its own fleet_memory_alloc + fleet_memory_free on stream A */
          lock_acquire();
          reclaim_pending();
          pick_and_hand_out();
          lock_release();
          if
          :: got ->
             atomic { a_enq++; busy_a[blk] = a_enq };   /* work on A uses it */
             mem_free(); assert(ok); d_step { blk = 0; g = 0; sr = 0; got = 0 }
          :: else                                /* FLEET_ERR_OUT_OF_MEMORY */
          fi
       :: /* fleet_memory_empty_cache */
          release_everywhere(1, 1)
       fi
    :: else -> break
    od;
    stale_done = 1
}

proctype streamB()
{
    do
    :: atomic { b_done < b_enq -> b_done++ }
    :: atomic { owner_done && b_done == b_enq -> break }
    od
}

proctype streamA()
{
    do
    :: atomic { a_done < a_enq -> a_done++ }
    :: atomic { owner_done && stale_done && a_done == a_enq -> break }
    od
}

init {
    atomic {
        run owner();
        run stale();
        run streamB();
        run streamA()
    }
    _nr_pr == 1;
    assert(lock == 0);
    ACCT;
    assert(!live[0] && !live[1])
}
