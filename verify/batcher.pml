/* verify/batcher.pml — Spin model of fleet's dynamic batcher: the request
 * queue, the tickets, the runner threads and shutdown (drain or cancel).
 *
 * ABSTRACTS (src/batch/batcher.c, include/fleet/batch.h)
 *   submitter         a client thread: fleet_batcher_submit of K requests,
 *     submit_req      each fleet_ticket_wait(t, -1) + fleet_ticket_release.
 *     wait_req        submit = under batcher->lock: refuse (st != RUNNING:
 *                     FLEET_ERR_SHUTDOWN; queued >= queue_capacity:
 *                     FLEET_ERR_QUEUE_FULL) or append to the queue
 *                     (queued++, queued_rows += rows), bump, and
 *                     cond_signal(work) only when no runner spins.
 *   runner            runner_main: lock; for (;;) { parked = false; while
 *     locked_region   (head == NULL && RUNNING) { if (!parked && idle_spin())
 *     idle_spin       continue; parked = true; cond_wait }; if (head ==
 *                     NULL) break; the
 *                     max_delay loop (cond_wait_until while head && RUNNING
 *                     && queued_rows < max_batch && now < until); if (head
 *                     == NULL) continue; take_batch; if (head) { bump;
 *                     if (!spinning) cond_signal }; unlock; run phase;
 *                     lock }. idle_spin: spinning++, unlock, spin until
 *                     work_seq moves (or the budget ends, or the spin rule
 *                     refuses at once), lock, spinning--; whether it moved.
 *                     `bump` is work_seq++ (under the lock).
 *     take_batch      take_batch: FIFO from the head; a late request goes
 *                     to the expired list (even if it does not fit), else
 *                     it stops at the first that does not fit in max_batch,
 *                     or, while a runner spins, after the first request.
 *     run_phase       complete_list(expired, FLEET_ERR_TIMEOUT), run_batch
 *                     (gather each request's rows at offset `at`, run,
 *                     scatter rows [at, at + t->rows) back, at += t->rows),
 *                     the statistics, complete_list(batch, st).
 *     complete_item   complete_list's last loop body: next = t->next, then
 *     complete        under the ticket's lock FLEET_DEBUG_ASSERT(!t->done),
 *                     status, done, broadcast; afterwards the ticket is the
 *                     owner's (who may free it at once). (complete_list
 *                     first releases every ticket's tensors and returns the
 *                     events and counts under one lock: batcher-private
 *                     bookkeeping, not modelled.)
 *   shutdown          fleet_batcher_shutdown(drain or cancel): under the
 *                     lock st = DRAINING, or st = CANCELLING and take the
 *                     whole queue; bump; broadcast(work); unlock;
 *                     complete_list(cancelled, FLEET_ERR_SHUTDOWN) (the
 *     complete_cancelled  inline); join the runners; under the lock
 *                     FLEET_ASSERT(head == NULL), st = STOPPED. Then a second
 *                     call (fleet_batcher_destroy's): returns at once.
 *
 * HOW (what is abstracted away, and why that is sound)
 *   - Processes: N submitters (N = 3 or 4), each with K requests (ticket id
 *     me*K + k) of 1 or 2 rows (nondeterministic). By default a submitter
 *     waits on each ticket before submitting the next; the first PIPELINE
 *     submitters submit all K first. R runners (max_inflight, 1 or 2), one
 *     shutdown process choosing drain or cancel (both explored in every
 *     run). Queue capacity QCAP = 2 (QUEUE_FULL happens with 3 clients),
 *     max_batch MAXB = 3 rows (batches [1] [2] [1,1] [1,2] [2,1]: request
 *     offsets 0, 1 and 2).
 *   - Shutdown happens at any moment; or, chosen nondeterministically by
 *     init (late_shutdown), only once every submitter got all its answers:
 *     then the runners alone must complete every ticket, so a lost wakeup
 *     (a queued request and every runner asleep for good) is a deadlock.
 *   - batcher->lock: every region under it is one atomic step (nothing
 *     inside blocks). submit's first look at the state (a separate region
 *     in the C code) is merged into the queuing region: st never returns to
 *     RUNNING and a refusal touches nothing shared, so the merged step has
 *     the same outcomes (BROKEN_CHECK_OUTSIDE_LOCK keeps it separate).
 *   - batcher->work: one `asleep` flag per runner. cond_wait sets it and
 *     unlocks in one step; cond_signal clears one set flag (which one is
 *     nondeterministic: the weakest guarantee of pthread_cond_signal),
 *     cond_broadcast all; "woken" and "relocked" are one step. The timed
 *     wait may return at any moment (a timeout), woken or not, which covers
 *     every max_delay_us. Spurious wakeups are not modelled: the C code
 *     re-checks in `while` loops, and they only add wakeups, which cannot
 *     hide a lost one (BROKEN_WAIT_IF shows a stolen wakeup is covered).
 *   - The idle spin: work_seq is a `poked` flag per spinning runner, set by
 *     every bump (a spinner only asks "did it move since I looked"); the
 *     spin's end is one step, taken when poked or at any moment (the budget
 *     ends, or the spin rule refuses at once: both are "not poked, gave
 *     up"), relocking in the same step. A submit that sees a spinner does
 *     not signal: the spinner must look at the queue under the lock before
 *     it parks (BROKEN_SPIN_PARKS_BLIND shows the lost wakeup otherwise).
 *   - The ticket's lock + cv: complete_list sets done and broadcasts under
 *     t->lock, the waiter loops on !done under the same lock, so a wakeup
 *     cannot be lost there: fleet_ticket_wait(-1) is "block until DONE".
 *   - Time: `now < until` and each request's `now >= deadline` are chosen
 *     nondeterministically at every look. Every request may have a deadline
 *     that passes; a request without one is the case where it never does.
 *   - The run phase (no lock held) is merged into the locked step that took
 *     the batch, and shutdown's complete_list into its locked step. Sound by
 *     reduction (Lipton): these steps touch only tickets the runner (or
 *     shutdown) owns, which no other process reads or writes until they
 *     are completed, so they commute with every step of another process
 *     and are left movers (complete() only enables its owner's wait, which
 *     cannot come first). Runners still relock in a step of their own, so
 *     a runner with a batch "in flight" while shutdown runs is explored.
 *     -DSPLIT_RUN keeps every complete() and the run a separate step; a
 *     run-spin.sh configuration checks it (and BROKEN_NEXT_AFTER_COMPLETE
 *     needs it).
 *   - Data: a request's identity stands for its tensors. run_batch writes
 *     bin[row] = the id of the request gathered into that row, the model
 *     computes output row p from input row p only (row independence), and
 *     scatter gives a request the id found in its rows (MIXED if its rows
 *     disagree). A failed batch (status != OK) takes the same path with
 *     another status and is not modelled; neither are statistics, events,
 *     tensor references, buckets and padding rows, nor create's failure
 *     path, fleet_ticket_poll and timed waits (they change no protocol
 *     state).
 *
 * PROPERTIES (assertions; pan's invalid-end-state check for B2)
 *   B1 exactly once: complete() asserts the ticket was completed 0 times
 *      before (the C code's FLEET_DEBUG_ASSERT(!t->done)) and that the
 *      batcher owned it (TAKEN); every read of a ticket by the batcher
 *      (t->next, t->rows, gather, scatter) is of a ticket it still owns, so
 *      never of one whose owner may have freed it.
 *   B2 nothing stranded, no lost wakeup: a submitter waits on every ticket
 *      it got, forever; a ticket never completed (left on the queue, taken
 *      by cancel and forgotten, a runner asleep with work queued, a runner
 *      that never wakes for shutdown) blocks a process, which is an invalid
 *      end state; with late_shutdown without any help from shutdown.
 *   B3 own output: a ticket completed FLEET_OK went through a batch and
 *      every row it received is its own (out[t] == t).
 *   B4 statuses: TIMEOUT => it did not run and was not cancelled; SHUTDOWN
 *      <=> the ticket was on the queue when cancel took it (and only with
 *      cancel): so with drain every accepted request ran or timed out, and
 *      with cancel everything queued at that moment is cancelled, not run.
 *   B5 submit: a refused submit (FULL or SHUTDOWN) leaves no ticket and
 *      nothing on the queue; an accepted one is linearized before
 *      shutdown's state flip (assert(!shut_started) when it is queued), so
 *      every submit after shutdown began (or returned) is refused.
 *   B6 cancel: nothing is taken off the queue once a cancel began
 *      (take_batch asserts st is RUNNING or DRAINING); batches already in
 *      flight finish.
 *   B7 runners exit only when st != RUNNING and the queue is empty; when
 *      shutdown's join returns, the queue is empty (FLEET_ASSERT(head ==
 *      NULL)) and no runner is alive; the second call returns at once.
 *   B8 take_batch always takes something (a runner never spins on a
 *      non-empty queue), and a batch never exceeds max_batch rows.
 *   B9 at the end (init, every process ended): queue empty, no runner
 *      alive or asleep, st == STOPPED; every accepted ticket was completed
 *      exactly once and released, every refused one never completed.
 *
 * THE SAME INVARIANTS IN THE C CODE
 *   complete_list()          FLEET_DEBUG_ASSERT(!t->done): completed exactly
 *                            once (B1; debug builds and FLEET_DEBUG_INVARIANTS,
 *                            the CMake default).
 *   fleet_batcher_shutdown   FLEET_ASSERT(batcher->head == NULL) after joining
 *                            the runners: no ticket stranded (B7; always on).
 *
 * BROKEN VARIANTS (Spin must report an error)
 *   -DBROKEN_EXIT_EARLY        a runner exits as soon as st != RUNNING, even
 *                              with requests queued while draining (B7, B2)
 *   -DBROKEN_CANCEL_SKIPS_QUEUE  cancel takes the queue but never completes
 *                              those tickets (B2)
 *   -DBROKEN_CHECK_OUTSIDE_LOCK  submit checks st only in its first look,
 *                              outside the queuing region, and queues after
 *                              shutdown flipped the state (B5; stranded or run
 *                              after cancel otherwise)
 *   -DBROKEN_SPLIT_OFFSET      scatter advances one row per request, not
 *                              t->rows: another request's output (B3)
 *   -DBROKEN_DOUBLE_COMPLETE   an expired request is completed as timed out
 *                              and also left in the batch (B1)
 *   -DBROKEN_NO_SIGNAL         submit queues without cond_signal (B2, with
 *                              late_shutdown)
 *   -DBROKEN_SHUTDOWN_SIGNAL   shutdown signals instead of broadcasting: with
 *                              2 runners one sleeps through it (B2)
 *   -DBROKEN_NEXT_AFTER_COMPLETE  complete_list reads t->next after
 *                              complete(t) (B1: a read of a ticket its owner
 *                              may have freed)
 *   -DBROKEN_SPIN_PARKS_BLIND  a runner whose spin saw nothing parks without
 *                              looking at the queue again: a request a submit
 *                              queued (without a signal, a runner spinning)
 *                              after the spin gave up waits forever (B2)
 *   -DBROKEN_WAIT_IF           `if`, not `while`, around the first cond_wait:
 *                              a runner whose wakeup another runner consumed
 *                              finds the queue empty and exits while RUNNING
 *                              (B7, B2)
 *
 * CONFIGURATION (-D...): N, K, R, QCAP, MAXB, PIPELINE, SPLIT_RUN.
 */

#ifndef N
#define N 3                      /* submitter threads                     */
#endif
#ifndef K
#define K 2                      /* requests per submitter                */
#endif
#ifndef R
#define R 2                      /* runner threads (max_inflight), 1 or 2 */
#endif
#ifndef QCAP
#define QCAP 2                   /* queue_capacity                        */
#endif
#ifndef MAXB
#define MAXB 3                   /* max_batch (rows)                      */
#endif
#ifndef PIPELINE
#define PIPELINE 0               /* submitters that submit all K first    */
#endif
#define NT (N * K)               /* tickets: submitter i's k-th is i*K+k  */
#define BCAP (MAXB + QCAP)       /* batch list room (a broken variant can
                                  * put more than MAXB tickets in it)     */

/* batcher->st */
#define RUNNING 0
#define DRAINING 1
#define CANCELLING 2
#define STOPPED 3

/* ticket states (ghost). FREE: no ticket (not submitted yet, refused, or
 * released by its owner). QUEUED: on the batcher's queue. TAKEN: on a
 * runner's batch or expired list, or on shutdown's cancelled list: the
 * batcher owns it. DONE: completed; it belongs to its owner alone. */
#define FREE 0
#define QUEUED 1
#define TAKEN 2
#define DONE 3

/* statuses (tstatus) */
#define S_NONE 0
#define S_OK 1                   /* FLEET_OK: ran                          */
#define S_TIMEOUT 2              /* FLEET_ERR_TIMEOUT: deadline passed     */
#define S_SHUTDOWN 3             /* FLEET_ERR_SHUTDOWN: cancelled / refused */
#define S_FULL 4                 /* FLEET_ERR_QUEUE_FULL: refused          */

#define MIXED 255                /* out[]: rows of two requests            */

/* runner program counter */
#define P_LOOP1 0                /* top of for(;;): wait for work          */
#define P_WAIT1 1                /* asleep in cond_wait(work)              */
#define P_DELAY 2                /* the max_delay loop                     */
#define P_WAIT2 3                /* asleep in cond_wait_until(work, until) */
#define P_TAKE 4                 /* after the delay loop                   */
#define P_RUN 5                  /* unlocked: complete, run, complete (SPLIT_RUN) */
#define P_RELOCK 6               /* about to relock after a batch         */
#define P_EXIT 7
#define P_SPIN 8                 /* unlocked: idle_spin's spin             */

/* ---- the batcher (batcher->lock) ---- */
byte st;
byte q[QCAP];                    /* head .. tail, FIFO                     */
byte qlen;                       /* batcher->queued                        */
byte qrows;                      /* batcher->queued_rows                   */
bool asleep[2];                  /* runner r waits on batcher->work        */
bool spins[2];                   /* runner r in idle_spin (batcher->spinning
                                  * counts them)                           */
bool poked[2];                   /* work_seq moved since spinning runner r
                                  * looked (kept 0 while it does not spin) */
#define spinning (spins[0] + spins[1])
byte alive;                      /* runner threads not yet exited          */

/* ---- the tickets ---- */
byte tstate[NT];
byte tstatus[NT];
byte ccount[NT];                 /* completions (ghost)                    */
byte out[NT];                    /* whose output rows it received          */
byte trows[NT];                  /* t->rows                                */

/* the batch's rows, whose request each is: scratch of run_batch's d_step
 * only (never live between steps, so not part of the state) */
hidden byte bin[BCAP * 2];

/* ---- ghost ---- */
bool accepted[NT];               /* submit returned FLEET_OK               */
bool cq[NT];                     /* on the queue when cancel took it       */
bool ran[NT];                    /* its rows went through a batch          */
bool shut_started;               /* shutdown flipped st                    */
bool cancel_mode;
byte subs_done;                  /* submitters that finished               */
bool late_shutdown;              /* shutdown waits for the submitters      */

/* pthread_cond_signal(work): wakes one waiter, if any. */
inline signal_work() {
    if
    :: asleep[0] -> asleep[0] = 0
    :: asleep[1] -> asleep[1] = 0
    :: else
    fi
}

inline broadcast_work() { asleep[0] = 0; asleep[1] = 0 }

/* bump: work_seq++ (lock held): every spinning runner sees it move. */
inline bump_work() { poked[0] = spins[0]; poked[1] = spins[1] }

/* submit's and the runner's wake-up: none while a runner spins. */
inline signal_unless_spinning() {
    if
    :: spinning == 0 -> signal_work()
    :: else
    fi
}

/* complete(b, t, status): one step (the batcher lock for the statistics,
 * then the ticket's lock: FLEET_DEBUG_ASSERT(!t->done), status, done,
 * broadcast). After it the ticket is its owner's. */
inline complete(tk, s) {
    atomic {
        ccount[tk]++;
        assert(ccount[tk] == 1);                 /* completed exactly once */
        assert(tstate[tk] == TAKEN);             /* the batcher owned it   */
        tstate[tk] = DONE;
        tstatus[tk] = s
    }
}

/* The batcher reads a ticket it still owns (t->next, t->rows, t->in ...). */
inline touch(tk) { assert(tstate[tk] == TAKEN) }

/* take_batch (lock held). */
inline take_batch() {
    alone = spinning > 0;
    rows = 0;
    nb = 0;
    ne = 0;
    do
    :: qlen == 0 -> break
    :: else ->
       t = q[0];
       assert(tstate[t] == QUEUED);
       late = 0;
       if                                        /* now >= deadline? */
       :: late = 1
       :: skip
       fi;
       if
       :: !late && (rows + trows[t] > MAXB || (alone && nb > 0)) -> break
       :: else
       fi;
       /* nothing is taken off the queue once a cancel began */
       assert(st == RUNNING || st == DRAINING);
       j = 0;
       do
       :: j + 1 < qlen -> q[j] = q[j + 1]; j++
       :: else -> break
       od;
       qlen--;
       q[qlen] = 0;
       qrows = qrows - trows[t];
       tstate[t] = TAKEN;
       if
       :: late ->
          ex[ne] = t;
          ne++
#ifdef BROKEN_DOUBLE_COMPLETE
          ;
          batch[nb] = t;                         /* ... and left in the batch */
          nb++;
          rows = rows + trows[t]
#endif
       :: else ->
          batch[nb] = t;
          nb++;
          rows = rows + trows[t]
       fi
    od;
    assert(nb + ne > 0);                         /* progress */
    t = 0;
    j = 0;
    late = 0;
    alone = 0
}

/* One region under batcher->lock, entered at `pc` (P_LOOP1: the lock was
 * just taken at the top of the for(;;); P_DELAY: relocked after the timed
 * wait) and left where the C code unlocks: asleep in a wait (P_WAIT1,
 * P_WAIT2), with a batch (P_RUN) or exiting (P_EXIT). */
inline locked_region() {
    do
    :: pc == P_LOOP1 ->
       /* while (head == NULL && RUNNING) { if (!parked && idle_spin())
        * continue; parked = true; cond_wait } */
       if
       :: qlen == 0 && st == RUNNING && !parked ->
          spins[me] = 1;                         /* idle_spin: unlock, spin */
          pc = P_SPIN;
          break
       :: qlen == 0 && st == RUNNING && parked -> asleep[me] = 1; pc = P_WAIT1; break
       :: else
       fi;
#ifdef BROKEN_EXIT_EARLY
       if
       :: st != RUNNING -> pc = P_EXIT; break    /* even with a queue */
       :: else
       fi;
#endif
       if
       :: qlen == 0 -> pc = P_EXIT; break        /* shut down, nothing left */
       :: else -> pc = P_DELAY
       fi
    :: pc == P_DELAY ->
       /* while (head && RUNNING && queued_rows < max_batch && now < until)
        *     cond_wait_until(until) */
       if
       :: qlen > 0 && st == RUNNING && qrows < MAXB ->
          if
          :: asleep[me] = 1; pc = P_WAIT2; break /* before `until`      */
          :: pc = P_TAKE                         /* `until` has passed  */
          fi
       :: else -> pc = P_TAKE
       fi
    :: pc == P_TAKE ->
       if
       :: qlen == 0 -> pc = P_LOOP1; parked = 0  /* another runner took them: continue */
       :: else ->
          take_batch();
          if
          :: qlen > 0 -> bump_work(); signal_unless_spinning() /* more for another runner */
          :: else
          fi;
          pc = P_RUN;
          break
       fi
    od
}

/* One iteration of complete_list(b, list, status):
 *     next = t->next; complete(b, t, status); t = next; */
inline complete_item(tk, s) {
#ifndef BROKEN_NEXT_AFTER_COMPLETE
    atomic {
        touch(tk);                               /* next = t->next */
        complete(tk, s);
        tk = 0;
        i++
    }
#else
    complete(tk, s);
    atomic {
        touch(tk);                               /* t = t->next, afterwards */
        tk = 0;
        i++
    }
#endif
}

/* The lock is released: complete_list(expired, TIMEOUT), run_batch,
 * complete_list(batch, status). */
inline run_phase() {
    /* complete_list(b, expired, FLEET_ERR_TIMEOUT) */
    do
    :: i < ne -> complete_item(ex[i], S_TIMEOUT)
    :: else -> i = 0; ne = 0; break
    od;
    if
    :: nb > 0 ->
       /* run_batch: gather each request's rows into the batch at offset
        * `at` (bin[row] = whose row it is), run (output row p is computed
        * from input row p only, so bin also says whose output row p is),
        * scatter rows [at, at + t->rows) back to each request; then the
        * statistics under the lock (they read t->enqueued_ns). */
       d_step {
           at = 0;
           i = 0;
           do
           :: i < nb ->
              t = batch[i];
              assert(tstate[t] == TAKEN);
              j = 0;
              do
              :: j < trows[t] -> bin[at + j] = t; j++
              :: else -> break
              od;
              at = at + trows[t];
              i++
           :: else -> break
           od;
           assert(at == rows && rows <= MAXB);
           at = 0;
           i = 0;
           do
           :: i < nb ->
              t = batch[i];
              assert(tstate[t] == TAKEN);
              out[t] = bin[at];
              if
              :: trows[t] == 2 && bin[at + 1] != bin[at] -> out[t] = MIXED
              :: else
              fi;
              ran[t] = 1;
#ifdef BROKEN_SPLIT_OFFSET
              at = at + 1;                       /* one row per request */
#else
              at = at + trows[t];
#endif
              i++
           :: else -> break
           od;
           i = 0;
           j = 0;
           t = 0;
           at = 0
       };
       /* complete_list(b, batch, st) */
       do
       :: i < nb -> complete_item(batch[i], S_OK)
       :: else -> i = 0; break
       od
    :: else
    fi;
    nb = 0;
    rows = 0
}

/* See HOW: unless SPLIT_RUN (or a variant that needs it), the unlocked run
 * phase is merged into the locked step that took the batch (its steps are
 * left movers). */
#if defined(BROKEN_NEXT_AFTER_COMPLETE) && !defined(SPLIT_RUN)
#define SPLIT_RUN
#endif
#ifndef SPLIT_RUN
#define LOCKED_THEN_RUN locked_region(); if :: pc == P_RUN -> run_phase(); pc = P_RELOCK :: else fi
#else
#define LOCKED_THEN_RUN locked_region()
#endif

proctype runner(byte me)
{
    byte pc, t, i, j, at, rows, nb, ne;
    bool late, alone, parked;
    byte batch[BCAP];
    byte ex[QCAP];

    atomic { pc = P_LOOP1; LOCKED_THEN_RUN };
    do
    :: pc == P_SPIN ->
       /* the spin ends (work_seq moved, or it gave up), relocked,
        * spinning--; then the while loop's next look */
       atomic {
           spins[me] = 0;
           if
           :: poked[me] -> poked[me] = 0; pc = P_LOOP1 /* continue */
           :: poked[me] = 0; parked = 1; pc = P_LOOP1  /* gave up */
#ifdef BROKEN_SPIN_PARKS_BLIND
              ; if
              :: st == RUNNING -> asleep[me] = 1; pc = P_WAIT1 /* no second look */
              :: else
              fi
#endif
           fi;
           if
           :: pc == P_LOOP1 -> LOCKED_THEN_RUN
           :: else
           fi
       }
    :: pc == P_WAIT1 ->
       /* woken (signal or broadcast), relocked */
#ifndef BROKEN_WAIT_IF
       atomic { !asleep[me] -> pc = P_LOOP1; LOCKED_THEN_RUN }
#else
       /* `if`, not `while`: no second look at the queue after the wait */
       atomic {
           !asleep[me] ->
           if
           :: qlen == 0 -> pc = P_EXIT
           :: else -> pc = P_DELAY; LOCKED_THEN_RUN
           fi
       }
#endif
    :: pc == P_WAIT2 ->
       /* woken or timed out, relocked */
       atomic { asleep[me] = 0; pc = P_DELAY; LOCKED_THEN_RUN }
#ifdef SPLIT_RUN
    :: pc == P_RUN ->
       run_phase();
       pc = P_RELOCK
#endif
    :: pc == P_RELOCK ->
       /* fleet__mutex_lock, back to the top of the for(;;) */
       atomic { pc = P_LOOP1; parked = 0; LOCKED_THEN_RUN }
    :: pc == P_EXIT -> break
    od;
    atomic {
        assert(qlen == 0 && st != RUNNING);      /* exits only then */
        alive--
    }
}

/* fleet_batcher_submit of request k (bump: then k++). */
inline submit_req(bump) {
    /* the request: 1 or 2 rows (every request has a deadline that may
     * or may not have passed when a runner looks: see HOW) */
    atomic {
        t = me * K + k;
        if
        :: trows[t] = 1
        :: trows[t] = 2
        fi;
#ifdef BROKEN_CHECK_OUTSIDE_LOCK
        /* the early check of the state under the lock (see HOW) */
        if
        :: st != RUNNING -> res = S_SHUTDOWN
        :: else -> res = S_NONE
        fi
    };
    /* check_request, the ticket, its event (no protocol state); then
     * under the lock: refuse, or queue + signal */
    atomic {
#else
        res = S_NONE;
#endif
        if
        :: res == S_NONE ->
#ifdef BROKEN_CHECK_OUTSIDE_LOCK
           /* trusts the early check: only the capacity under the lock */
           if
           :: qlen >= QCAP -> res = S_FULL
#else
           if
           :: st != RUNNING -> res = S_SHUTDOWN
           :: st == RUNNING && qlen >= QCAP -> res = S_FULL
#endif
           :: else ->
              /* accepted: linearized before shutdown's state flip */
              assert(!shut_started);
              assert(tstate[t] == FREE);
              tstate[t] = QUEUED;
              accepted[t] = 1;
              q[qlen] = t;
              qlen++;
              qrows = qrows + trows[t];
              bump_work();
#ifndef BROKEN_NO_SIGNAL
              signal_unless_spinning()
#else
              skip
#endif
           fi
        :: else
        fi;
        if
        :: res != S_NONE ->
           /* refused: no ticket, nothing queued */
           assert(tstate[t] == FREE && !accepted[t]);
           i = 0;
           do
           :: i < qlen -> assert(q[i] != t); i++
           :: else -> break
           od;
           i = 0;
           trows[t] = 0
        :: else
        fi;
        res = 0;
        t = 0;
        k = k + bump
    }
}

/* fleet_ticket_wait(t, -1) on request k if it was accepted, then
 * fleet_ticket_release; k++. */
inline wait_req() {
    /* fleet_ticket_wait(t, -1): until done */
    atomic {
        !accepted[me * K + k] || tstate[me * K + k] == DONE ->
        t = me * K + k;
        k++;
        if
        :: accepted[t] ->
           assert(ccount[t] == 1);
           if
           :: tstatus[t] == S_OK ->
              assert(ran[t] && out[t] == t)   /* its own output */
           :: tstatus[t] == S_TIMEOUT ->
              assert(!ran[t] && !cq[t])
           :: tstatus[t] == S_SHUTDOWN ->
              assert(cq[t] && cancel_mode && !ran[t])
           :: else -> assert(false)
           fi;
           /* queued when cancel took the queue <=> cancelled */
           assert(cq[t] == (tstatus[t] == S_SHUTDOWN));
           /* fleet_ticket_release: the ticket is freed */
           tstate[t] = FREE;
           tstatus[t] = S_NONE;
           out[t] = 0;
           ran[t] = 0;
           cq[t] = 0;
           trows[t] = 0
        :: else
        fi;
        t = 0
    }
}

/* A client thread: K requests. The first PIPELINE submitters submit all K
 * before they wait on any (so a client has several tickets outstanding);
 * the others wait on each before submitting the next. */
proctype submitter(byte me)
{
    byte k, t, res, i;

    if
    :: me < PIPELINE ->
       do
       :: k < K -> submit_req(1)
       :: else -> break
       od;
       k = 0;
       do
       :: k < K -> wait_req()
       :: else -> break
       od
    :: else ->
       do
       :: k < K -> submit_req(0); wait_req()
       :: else -> break
       od
    fi;
    k = 0;
    subs_done++
}

/* Unlocked: complete_list(batcher, cancelled, FLEET_ERR_SHUTDOWN). */
inline complete_cancelled() {
#ifndef BROKEN_CANCEL_SKIPS_QUEUE
    do
    :: i < n -> complete_item(canc[i], S_SHUTDOWN)
    :: else -> i = 0; break
    od;
#else
    d_step {                                     /* forgotten */
        i = 0;
        do
        :: i < QCAP -> canc[i] = 0; i++
        :: else -> i = 0; break
        od
    };
#endif
    n = 0
}

/* fleet_batcher_shutdown(drain or cancel), then a second call (as
 * fleet_batcher_destroy makes). */
proctype shutdown()
{
    byte i, n;
    byte canc[QCAP];
    bool first;

    /* When: at any moment; or (late, chosen by init) only once every
     * submitter got every answer: then nothing but the runners can complete
     * a ticket, and a lost wakeup shows as an invalid end state. */
    !late_shutdown || subs_done == N;
    atomic {
        first = (st == RUNNING);
        assert(first);
        if
        :: st = DRAINING
        :: st = CANCELLING;
           cancel_mode = 1;
           /* take the whole queue */
           n = qlen;
           i = 0;
           do
           :: i < qlen ->
              canc[i] = q[i];
              assert(tstate[q[i]] == QUEUED);
              tstate[q[i]] = TAKEN;
              cq[q[i]] = 1;
              q[i] = 0;
              i++
           :: else -> break
           od;
           i = 0;
           qlen = 0;
           qrows = 0
        fi;
        shut_started = 1;
        bump_work();
#ifndef BROKEN_SHUTDOWN_SIGNAL
        broadcast_work()
#else
        signal_work()                            /* wakes one runner */
#endif
#ifndef SPLIT_RUN
        ;
        complete_cancelled()
#endif
    };
#ifdef SPLIT_RUN
    complete_cancelled();
#endif
    /* join the runners */
    alive == 0;
    atomic {
        assert(qlen == 0);                       /* FLEET_ASSERT(head == NULL) */
        st = STOPPED
    };
    /* idempotent: a second call returns at once */
    atomic { first = (st == RUNNING); assert(!first && qlen == 0 && alive == 0) }
}

init {
    byte i;
    assert(R >= 1 && R <= 2 && N >= 1 && NT < MIXED && K >= 1);
    atomic {
        if
        :: late_shutdown = 1
        :: skip
        fi;
        alive = R;
        i = 0;
        do
        :: i < R -> run runner(i); i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < N -> run submitter(i); i++
        :: else -> break
        od;
        i = 0;
        run shutdown()
    }
    /* every process ended (none blocked forever) */
    _nr_pr == 1;
    assert(qlen == 0 && qrows == 0 && alive == 0 && st == STOPPED);
    assert(!asleep[0] && !asleep[1] && spinning == 0);
    do
    :: i < NT ->
       /* accepted: completed exactly once and released; refused: never
        * completed */
       assert(tstate[i] == FREE);
       assert(ccount[i] == (accepted[i] -> 1 : 0));
       i++
    :: else -> break
    od
}
