/* tests/onnx_writer.h — ONNX messages for tests, on pb_writer.h: value
 * infos, initializers, attributes, nodes and the model around a graph, so
 * a test writes the model it needs field by field.
 *
 *     pbw g = {0};
 *     int64_t xd[] = {-1, 4};
 *     const char *const pn[] = {"N", NULL};
 *     onnx_w_value_info(&g, 11, "x", 1, 2, xd, pn);          // a graph input
 *     onnx_w_value_info(&g, 12, "y", 1, 2, xd, pn);          // an output
 *     onnx_w_node(&g, "Relu", "relu", (const char *[]){"x"}, 1, "y", NULL, 0);
 *     pbw file = onnx_w_model(&g, 17);                       // frees g
 *     ... fleet_model_load_onnx_memory(dev, file.p, file.n, NULL, &m) ...
 *     pbw_free(&file);
 *
 * Element types are ONNX's numbers (1 float, 7 int64). */
#ifndef FLEET_TEST_ONNX_WRITER_H
#define FLEET_TEST_ONNX_WRITER_H

#include "pb_writer.h"

/* A tensor value info: dims[i] >= 0 a size, else params[i] names it. */
static inline void onnx_w_value_info(pbw *g, uint32_t field, const char *name, int elem, int ndim, const int64_t *dims,
               const char *const *params)
{
    pbw shape = {0}, tensor = {0}, type = {0}, v = {0};
    for (int d = 0; d < ndim; d++) {
        pbw dim = {0};
        if (dims[d] >= 0)
            pbw_varint(&dim, 1, (uint64_t)dims[d]);
        else
            pbw_str(&dim, 2, params[d]);
        pbw_msg(&shape, 1, &dim);
        pbw_free(&dim);
    }
    pbw_varint(&tensor, 1, (uint64_t)elem);
    pbw_msg(&tensor, 2, &shape);
    pbw_msg(&type, 1, &tensor);
    pbw_str(&v, 1, name);
    pbw_msg(&v, 2, &type);
    pbw_msg(g, field, &v);
    pbw_free(&shape), pbw_free(&tensor), pbw_free(&type), pbw_free(&v);
}

static inline void onnx_w_tensor_head(pbw *t, const char *name, int elem, int ndim, const int64_t *dims)
{
    for (int d = 0; d < ndim; d++)
        pbw_varint(t, 1, (uint64_t)dims[d]);
    pbw_varint(t, 2, (uint64_t)elem);
    pbw_str(t, 8, name);
}

static inline void onnx_w_init_raw(pbw *g, const char *name, int elem, int ndim, const int64_t *dims,
                     const void *data, size_t bytes)
{
    pbw t = {0};
    onnx_w_tensor_head(&t, name, elem, ndim, dims);
    pbw_bytes(&t, 9, data, bytes);
    pbw_msg(g, 5, &t);
    pbw_free(&t);
}

static inline void onnx_w_init_i64(pbw *g, const char *name, int n, const int64_t *v)
{
    int64_t dims[1] = {n};
    onnx_w_init_raw(g, name, 7, 1, dims, v, sizeof(int64_t) * (size_t)n);
}

static inline pbw onnx_w_attr_int(const char *name, int64_t v)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_varint(&a, 20, 2);
    pbw_varint(&a, 3, (uint64_t)v);
    return a;
}

/* A node; attrs (n_attrs of them) are freed. */
static inline void onnx_w_node(pbw *g, const char *op, const char *name, const char *const *in, int n_in,
                 const char *out, pbw *attrs, int n_attrs)
{
    pbw n = {0};
    for (int i = 0; i < n_in; i++)
        pbw_str(&n, 1, in[i]);
    pbw_str(&n, 2, out);
    pbw_str(&n, 3, name);
    pbw_str(&n, 4, op);
    for (int i = 0; i < n_attrs; i++) {
        pbw_msg(&n, 5, &attrs[i]);
        pbw_free(&attrs[i]);
    }
    pbw_msg(g, 1, &n);
    pbw_free(&n);
}

static inline pbw onnx_w_model(pbw *g, int64_t opset)
{
    pbw m = {0}, o = {0};
    pbw_varint(&m, 1, 8);
    pbw_varint(&o, 2, (uint64_t)opset);
    pbw_msg(&m, 8, &o);
    pbw_msg(&m, 7, g);
    pbw_free(&o);
    pbw_free(g);
    return m;
}

static inline pbw onnx_w_attr_float(const char *name, float v)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_varint(&a, 20, 1);
    pbw_float(&a, 2, v);
    return a;
}

static inline pbw onnx_w_attr_ints(const char *name, int n, const int64_t *v)
{
    pbw a = {0};
    pbw_str(&a, 1, name);
    pbw_varint(&a, 20, 7);
    for (int i = 0; i < n; i++)
        pbw_varint(&a, 8, (uint64_t)v[i]);
    return a;
}

#endif /* FLEET_TEST_ONNX_WRITER_H */
