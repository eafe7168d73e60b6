/* model/run.h — a model as the rest of fleet uses it (the batcher): its
 * declared inputs and outputs, and a run on a given stream, without the
 * graph or the plans. */
#ifndef FLEET_MODEL_RUN_H
#define FLEET_MODEL_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet/model.h"

/* A declared input or output: shape with FLEET_DIM_BATCH where the batch
 * goes (points into the model; valid while it lives). */
typedef struct fleet__model_io {
    const char *name;
    fleet_dtype dtype;
    int ndim;
    const int64_t *shape;
} fleet__model_io;

/* Checks shared by every public model function: non-NULL, fleet usable, the
 * model's device usable, not a model from before a fork. */
fleet_status fleet__model_enter(const fleet_model *m, const char *fn);

struct fleet_device *fleet__model_device(const fleet_model *m);
bool fleet__model_finalized(const fleet_model *m);
int fleet__model_io_count(const fleet_model *m, bool output);
/* i in [0, fleet__model_io_count(m, output)). */
fleet__model_io fleet__model_io_at(const fleet_model *m, bool output, int i);

/* fleet_model_run for tensors already checked against the declarations
 * with `batch` rows (structs, not handles: fleet's own or resolved), on
 * `stream` of the model's device. Errors read "fleet_model_run: ...". */
fleet_status fleet__model_run(fleet_model *m, struct fleet_stream *stream, int64_t batch,
                              const fleet_tensor *const *inputs, fleet_tensor *const *outputs);

#endif /* FLEET_MODEL_RUN_H */
