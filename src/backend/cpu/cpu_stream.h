/* backend/cpu/cpu_stream.h — asynchronous cpu streams: one worker thread per
 * stream draining a FIFO of tasks, and events on top of task counts.
 *
 * Sequence numbers: the k-th task submitted to a stream has sequence k
 * (1-based); `submitted` is the last sequence handed out, `completed` the
 * number of tasks finished. Invariant: completed <= submitted, and
 * submitted - completed <= FLEET__CPU_QUEUE_CAPACITY. An event captures a
 * (stream, submitted) pair; it is complete when that stream's completed
 * count reaches the captured value.
 */
#ifndef FLEET_BACKEND_CPU_STREAM_H
#define FLEET_BACKEND_CPU_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/status.h"
#include "fleet/stream.h"

/* 256 tasks of up to 512 bytes of arguments: about 130 KiB of ring per
 * stream, touched only as deep as the queue gets. */
#define FLEET__CPU_QUEUE_CAPACITY 256
#define FLEET__CPU_TASK_ARGS 640

typedef struct fleet__cpu_stream fleet__cpu_stream;
typedef struct fleet__cpu_event fleet__cpu_event;

/* A task: run(args) on the worker. args are copied at submission. */
typedef void (*fleet__cpu_task_fn)(const void *args);

fleet_status fleet__cpu_stream_create(int ordinal, fleet__cpu_stream **out);
/* Queue a task (blocks while the queue is full, running queued tasks
 * meanwhile). args_size <= FLEET__CPU_TASK_ARGS. The task may run on the
 * stream's worker or on a thread that waits for the stream; a host task
 * (user code: host functions) runs on the worker only. Tasks submitted
 * here are kernels: finite, waiting for nothing (the fork handlers wait for
 * a running kernel to finish). */
fleet_status fleet__cpu_stream_submit(fleet__cpu_stream *s, fleet__cpu_task_fn run,
                                      const void *args, size_t args_size);
fleet_status fleet__cpu_stream_submit_host(fleet__cpu_stream *s, fleet__cpu_task_fn run,
                                           const void *args, size_t args_size);
fleet_status fleet__cpu_stream_synchronize(fleet__cpu_stream *s);
fleet_status fleet__cpu_stream_query(fleet__cpu_stream *s);

fleet_status fleet__cpu_event_create(fleet__cpu_event **out);
void fleet__cpu_event_destroy(fleet__cpu_event *e);
fleet_status fleet__cpu_event_record(fleet__cpu_event *e, fleet__cpu_stream *s);
fleet_status fleet__cpu_stream_wait_event(fleet__cpu_stream *s, fleet__cpu_event *e);
fleet_status fleet__cpu_event_query(fleet__cpu_event *e);
fleet_status fleet__cpu_event_synchronize(fleet__cpu_event *e);

/* Stop and join every worker, free every stream (fleet_shutdown). */
void fleet__cpu_streams_shutdown(void);

/* At process exit (after the atexit handlers): let each worker finish the
 * task it is running, then park it for good, waiting at most a second in
 * all. Libraries finalised after this (OpenBLAS frees its buffers) then never
 * run under a task. Work queued later is never run: the process is ending. */
void fleet__cpu_streams_quiesce_at_exit(void);

/* Fork: take every stream lock and the event lock / release them / in the
 * child, release them and reset every stream (queued work dropped, worker
 * restarted lazily). */
void fleet__cpu_streams_atfork_prepare(void);
void fleet__cpu_streams_atfork_parent(void);
void fleet__cpu_streams_atfork_child(void);

#endif /* FLEET_BACKEND_CPU_STREAM_H */
