/* fleet.h — umbrella header of the fleet runtime.
 *
 * fleet lets many threads of one process run neural-network inference on the
 * same device at once: per-thread streams, a stream-ordered caching allocator,
 * events, and ops on cpu and cuda backends. See each header for its contract.
 */
#ifndef FLEET_H
#define FLEET_H

#define FLEET_VERSION_MAJOR 0
#define FLEET_VERSION_MINOR 1
#define FLEET_VERSION_PATCH 0

#include "fleet/status.h"
#include "fleet/runtime.h"
#include "fleet/stream.h"
#include "fleet/memory.h"
#include "fleet/tensor.h"
#include "fleet/ops.h"
#include "fleet/linalg.h"
#include "fleet/model.h"
#include "fleet/batch.h"
#include "fleet/server.h"

#endif /* FLEET_H */
