/* verify/capture_gate.pml — the CUDA graph capture gate of one stream
 * (runtime/stream_pool.c), for the model runtime's captures.
 *
 * A capture records whatever is submitted to the stream, by any thread, so
 * while one is in progress nobody but the capturing thread may submit to it.
 * The C code, with every access seq_cst (Promela's interleaving is
 * sequentially consistent too):
 *
 *   fleet__stream_capture_begin   CAS capturing 0 -> 1; then if sharers != 0
 *                                 or the device's syncing != 0: capturing = 0,
 *                                 refused (the run launches step by step)
 *   sharer_enter                  sharers++; wait while capturing
 *                                 (a thread that shares the stream or made it
 *                                 current; it submits until sharer_leave)
 *   fleet__stream_foreign_enter   the same around one submission (an event
 *                                 record, a wait, a host function on a named
 *                                 stream)
 *   fleet__stream_foreign_try_enter  sharers++; if capturing: sharers--, do
 *                                 not submit (the allocator, under its shard
 *                                 lock, then waits for the capture and syncs)
 *   fleet__device_synchronize     syncing++; wait while capturing; sync
 *
 * Checked: while a capture is accepted, no other process submits and no
 * device-wide sync runs; and every process ends (no state where one waits
 * for ever). Processes: the capturing thread (CAPTURES attempts), a sharer,
 * a foreign submitter, a trying foreign submitter, a device syncer.
 *
 * Broken variants (each must be rejected):
 *   BROKEN_LATE_ANNOUNCE   sharer looks at `capturing` before counting itself
 *   BROKEN_NO_RECHECK      capture_begin does not look at sharers after the CAS
 *   BROKEN_TRY_LOOK_FIRST  try_enter looks before counting itself
 *   BROKEN_SYNC_NO_WAIT    the device sync does not wait out a capture
 */

#ifndef CAPTURES
#define CAPTURES 2
#endif
#ifndef SUBMITS
#define SUBMITS 2
#endif

byte sharers = 0;
bit capturing = 0;
byte syncing = 0;
bit in_capture = 0;  /* a capture was accepted and is recording */
byte captures_done = 0;

inline submit_foreign()
{
    assert(!in_capture)
}

active proctype capturer()
{
    byte i = 0;
    do
    :: i < CAPTURES ->
        atomic { capturing == 0 -> capturing = 1 };
#ifdef BROKEN_NO_RECHECK
        if
        :: true -> in_capture = 1
        fi;
#else
        if
        :: sharers != 0 || syncing != 0 -> capturing = 0
        :: else -> in_capture = 1
        fi;
#endif
        if
        :: in_capture ->
            /* the capturing thread's own submissions are recorded */
            in_capture = 0;
            captures_done++;
            capturing = 0
        :: else -> skip
        fi;
        i++
    :: else -> break
    od
}

active proctype sharer()
{
    byte k = 0;
#ifdef BROKEN_LATE_ANNOUNCE
    capturing == 0;
    sharers++;
#else
    sharers++;
    capturing == 0;
#endif
    do
    :: k < SUBMITS -> submit_foreign(); k++
    :: else -> break
    od;
    sharers--
}

active proctype foreign()
{
    sharers++;
    capturing == 0;
    submit_foreign();
    sharers--
}

active proctype foreign_try()
{
#ifdef BROKEN_TRY_LOOK_FIRST
    if
    :: capturing == 1 -> skip        /* refused: wait, then sync */
    :: else -> sharers++; submit_foreign(); sharers--
    fi
#else
    sharers++;
    if
    :: capturing == 1 -> sharers--   /* refused: wait, then sync */
    :: else -> submit_foreign(); sharers--
    fi
#endif
}

active proctype device_syncer()
{
    syncing++;
#ifndef BROKEN_SYNC_NO_WAIT
    capturing == 0;
#endif
    assert(!in_capture);
    syncing--
}
