/* onnx_fuzz — libFuzzer target for the ONNX reader (onnx/onnx_proto.h).
 *
 * Decodes the input as a model file; on success reads every byte it points
 * at — each name, op type, attribute string, every initializer's and
 * attribute tensor's data that is stored in the file — so ASan sees any
 * slice outside the input, and checks what the decoder promises: counts
 * within their limits, at most 8 dimensions, every slice inside the input.
 * On failure the model must be empty and the error text set. A broken
 * promise traps. Built and run by scripts/fuzz.sh (`make fuzz`).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_proto.h"
#include "fuzz.h"

static const uint8_t *lo, *hi;
static volatile uint8_t sink;

static void touch(fleet__onnx_str s)
{
    if (s.n == 0)
        return;
    CHECK(s.p >= lo && s.p + s.n <= hi);
    for (size_t i = 0; i < s.n; i++)
        sink ^= s.p[i];
}

static void read_tensor(const fleet__onnx_model *m, const fleet__onnx_tensor *t)
{
    CHECK(t->ndim >= 0 && t->ndim <= FLEET_MAX_DIMS);
    touch(t->name);
    touch(t->location);
    int64_t numel = fleet__onnx_tensor_numel(t);
    size_t es = fleet__onnx_elem_size(t->data_type);
    if (t->external || numel < 0 || es == 0 || (uint64_t)numel * es > ((size_t)1 << 24))
        return;
    size_t bytes = (size_t)numel * es;
    uint8_t *dst = malloc(bytes + 1);
    CHECK(dst != NULL);
    fleet_status st = fleet__onnx_tensor_read(m, t, dst, bytes);
    CHECK(st == FLEET_OK || st == FLEET_ERR_INVALID_MODEL);
    if (st == FLEET_OK)
        for (size_t i = 0; i < bytes; i++)
            sink ^= dst[i];
    free(dst);
}

static void read_value_infos(const fleet__onnx_value_info *v, int n)
{
    CHECK(n >= 0 && n <= FLEET__ONNX_MAX_VALUES);
    for (int i = 0; i < n; i++) {
        touch(v[i].name);
        CHECK(v[i].ndim >= 0 && v[i].ndim <= FLEET_MAX_DIMS);
        for (int d = 0; d < v[i].ndim; d++)
            touch(v[i].dims[d].param);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lo = data;
    hi = data + size;
    fleet__onnx_model m;
    fleet_status st = fleet__onnx_parse(data, size, &m);
    if (st != FLEET_OK) {
        CHECK(st == FLEET_ERR_INVALID_MODEL || st == FLEET_ERR_OUT_OF_MEMORY);
        CHECK(m.arena == NULL && m.graph.nodes == NULL && m.opsets == NULL);
        CHECK(fleet_last_error()[0] != '\0');
        return 0;
    }
    touch(m.producer_name);
    touch(m.producer_version);
    for (int i = 0; i < m.n_opsets; i++)
        touch(m.opsets[i].domain);
    const fleet__onnx_graph *g = &m.graph;
    CHECK(g->n_nodes >= 0 && g->n_nodes <= FLEET__ONNX_MAX_NODES);
    for (int i = 0; i < g->n_nodes; i++) {
        const fleet__onnx_node *n = &g->nodes[i];
        CHECK(n->n_inputs <= FLEET__ONNX_MAX_NODE_IO && n->n_outputs <= FLEET__ONNX_MAX_NODE_IO);
        CHECK(n->n_attrs <= FLEET__ONNX_MAX_ATTRS);
        touch(n->name);
        touch(n->op_type);
        touch(n->domain);
        for (int k = 0; k < n->n_inputs; k++)
            touch(n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++)
            touch(n->outputs[k]);
        for (int k = 0; k < n->n_attrs; k++) {
            const fleet__onnx_attr *a = &n->attrs[k];
            touch(a->name);
            touch(a->s);
            CHECK(a->n_ints <= FLEET__ONNX_MAX_LIST && a->n_floats <= FLEET__ONNX_MAX_LIST);
            for (int j = 0; j < a->n_ints; j++)
                sink ^= (uint8_t)a->ints[j];
            for (int j = 0; j < a->n_floats; j++) {
                uint32_t bits;
                memcpy(&bits, &a->floats[j], sizeof bits);
                sink ^= (uint8_t)bits;
            }
            for (int j = 0; j < a->n_strings; j++)
                touch(a->strings[j]);
            if (a->t != NULL)
                read_tensor(&m, a->t);
        }
    }
    for (int i = 0; i < g->n_initializers; i++)
        read_tensor(&m, &g->initializers[i]);
    read_value_infos(g->inputs, g->n_inputs);
    read_value_infos(g->outputs, g->n_outputs);
    read_value_infos(g->value_infos, g->n_value_infos);
    fleet__onnx_model_free(&m);
    return 0;
}
