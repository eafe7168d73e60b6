/* onnx/onnx_proto.c — decoding the ONNX messages (onnx/onnx_proto.h). */
#include "onnx/onnx_proto.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/prim.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX reader copies little-endian tensor data as it is"
#endif

/* ---- the arena ------------------------------------------------------------------ */

#define ARENA_BLOCK ((size_t)64 << 10)

typedef struct block {
    struct block *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
} block;

struct fleet__onnx_arena {
    block *head;
};

/* Zeroed memory for n elements of `size` bytes, freed with the arena. */
static void *arena_alloc(fleet__onnx_arena *a, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (size != 0 && n > SIZE_MAX / size / 2)
        return NULL;
    size_t bytes = (n * size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    block *b = a->head;
    if (b == NULL || b->cap - b->used < bytes) {
        size_t cap = bytes > ARENA_BLOCK ? bytes : ARENA_BLOCK;
        if ((b = fleet__malloc(sizeof *b + cap)) == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    memset(p, 0, bytes);
    return p;
}

/* *p = n zeroed elements (NULL for none); false when out of memory. */
static bool array(fleet__onnx_arena *a, void **p, int n, size_t size)
{
    *p = NULL;
    return n == 0 || (*p = arena_alloc(a, (size_t)n, size)) != NULL;
}

static void arena_free(fleet__onnx_arena *a)
{
    if (a == NULL)
        return;
    for (block *b = a->head; b != NULL;) {
        block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct ctx {
    const uint8_t *base;
    fleet__onnx_arena *arena;
} ctx;

static fleet_status no_memory(void)
{
    return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "onnx: no host memory for the decoded model");
}

static size_t offset_in(const ctx *c, fleet__pb_slice s)
{
    return (size_t)(s.p - c->base);
}

static fleet_status wrong_wire(const fleet__pb_field *f, const char *field)
{
    char what[96];
    snprintf(what, sizeof what, "%s has wire type %d", field, f->wire);
    return fleet__pb_error(f->offset, what);
}

#define EXPECT(f, w, field)                                                              \
    do {                                                                                 \
        if ((f)->wire != (w))                                                            \
            return wrong_wire((f), (field));                                             \
    } while (0)

/* How many fields `number` the message has (wire types not checked here). */
static fleet_status count(const ctx *c, fleet__pb_slice msg, uint32_t number, int limit,
                          const char *what, int *n)
{
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    *n = 0;
    while ((got = fleet__pb_next(&r, &f)) > 0)
        if (f.number == number && ++*n > limit) {
            char text[96];
            snprintf(text, sizeof text, "more than %d %s", limit, what);
            return fleet__pb_error(f.offset, text);
        }
    return got < 0 ? FLEET_ERR_INVALID_MODEL : FLEET_OK;
}

/* Decimal digits of an external_data value. */
static bool parse_decimal(fleet__onnx_str s, int64_t *out)
{
    if (s.n == 0 || s.n > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return true;
}

static fleet_status decode_entry(const ctx *c, fleet__pb_slice msg, fleet__onnx_str *key,
                                 fleet__onnx_str *value)
{
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    *key = *value = (fleet__onnx_str){msg.p, 0};
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        if (f.number == 1 || f.number == 2) {
            EXPECT(&f, FLEET__PB_BYTES, "StringStringEntryProto's key or value");
            *(f.number == 1 ? key : value) = f.bytes;
        }
    }
    return got < 0 ? FLEET_ERR_INVALID_MODEL : FLEET_OK;
}

static fleet_status decode_tensor(const ctx *c, fleet__pb_slice msg, fleet__onnx_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->msg = msg;
    t->offset = offset_in(c, msg);
    t->ext_offset = t->ext_length = -1;
    t->name = (fleet__onnx_str){msg.p, 0};
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        switch (f.number) {
        case 2:
            EXPECT(&f, FLEET__PB_VARINT, "TensorProto.data_type");
            t->data_type = (int32_t)f.varint;
            break;
        case 8:
            EXPECT(&f, FLEET__PB_BYTES, "TensorProto.name");
            t->name = f.bytes;
            break;
        case 9:
            EXPECT(&f, FLEET__PB_BYTES, "TensorProto.raw_data");
            t->has_raw = true;
            t->raw = f.bytes;
            break;
        case 13: {
            EXPECT(&f, FLEET__PB_BYTES, "TensorProto.external_data");
            fleet__onnx_str key, value;
            fleet_status st = decode_entry(c, f.bytes, &key, &value);
            if (st != FLEET_OK)
                return st;
            bool ok = true;
            if (fleet__onnx_str_is(key, "location"))
                t->location = value;
            else if (fleet__onnx_str_is(key, "offset"))
                ok = parse_decimal(value, &t->ext_offset);
            else if (fleet__onnx_str_is(key, "length"))
                ok = parse_decimal(value, &t->ext_length);
            if (!ok)
                return fleet__pb_error(f.offset, "an external_data offset or length that is "
                                                 "not a decimal number below 10^18");
            break;
        }
        case 14:
            EXPECT(&f, FLEET__PB_VARINT, "TensorProto.data_location");
            t->external = f.varint == 1;
            break;
        default:
            break;
        }
    }
    if (got < 0)
        return FLEET_ERR_INVALID_MODEL;
    fleet__pb_repeated it = fleet__pb_repeated_of(msg, c->base, 1, FLEET__PB_VARINT);
    uint64_t d;
    while ((got = fleet__pb_repeated_next(&it, &d)) > 0) {
        if (t->ndim == FLEET_MAX_DIMS)
            return fleet__pb_error(t->offset, "a tensor of more than 8 dimensions (fleet's most)");
        if ((int64_t)d < 0)
            return fleet__pb_error(t->offset, "a tensor with a negative dimension");
        t->dims[t->ndim++] = (int64_t)d;
    }
    if (got < 0)
        return FLEET_ERR_INVALID_MODEL;
    if (t->external && t->location.n == 0)
        return fleet__pb_error(t->offset, "an external tensor without a location");
    return FLEET_OK;
}

/* A repeated int64 (VARINT) or float (FIXED32) attribute list. */
static fleet_status decode_list(const ctx *c, fleet__pb_slice msg, uint32_t number, int wire,
                                void **out, int *n)
{
    fleet__pb_repeated it = fleet__pb_repeated_of(msg, c->base, number, wire);
    uint64_t v;
    int got;
    *n = 0;
    while ((got = fleet__pb_repeated_next(&it, &v)) > 0)
        if (++*n > FLEET__ONNX_MAX_LIST)
            return fleet__pb_error(offset_in(c, msg), "an attribute list over 2^20 entries");
    if (got < 0)
        return FLEET_ERR_INVALID_MODEL;
    if (*n == 0)
        return FLEET_OK;
    size_t size = wire == FLEET__PB_VARINT ? sizeof(int64_t) : sizeof(float);
    unsigned char *dst = arena_alloc(c->arena, (size_t)*n, size);
    if (dst == NULL)
        return no_memory();
    it = fleet__pb_repeated_of(msg, c->base, number, wire);
    for (int i = 0; fleet__pb_repeated_next(&it, &v) > 0; i++) {
        if (wire == FLEET__PB_VARINT) {
            int64_t x = fleet__pb_int64(v);
            memcpy(dst + (size_t)i * size, &x, size);
        } else {
            float x = fleet__pb_float(v);
            memcpy(dst + (size_t)i * size, &x, size);
        }
    }
    *out = dst;
    return FLEET_OK;
}

static fleet_status decode_attr(const ctx *c, fleet__pb_slice msg, fleet__onnx_attr *a)
{
    memset(a, 0, sizeof *a);
    a->name = (fleet__onnx_str){msg.p, 0};
    fleet_status st;
    if ((st = count(c, msg, 9, FLEET__ONNX_MAX_LIST, "attribute strings", &a->n_strings)) !=
            FLEET_OK ||
        (st = count(c, msg, 10, FLEET__ONNX_MAX_LIST, "attribute tensors", &a->n_tensors)) !=
            FLEET_OK ||
        (st = count(c, msg, 11, FLEET__ONNX_MAX_LIST, "attribute graphs", &a->n_graphs)) !=
            FLEET_OK)
        return st;
    if (a->n_strings > 0 &&
        (a->strings = arena_alloc(c->arena, (size_t)a->n_strings, sizeof *a->strings)) == NULL)
        return no_memory();
    int type_seen = 0, strings = 0;
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        switch (f.number) {
        case 1:
            EXPECT(&f, FLEET__PB_BYTES, "AttributeProto.name");
            a->name = f.bytes;
            break;
        case 20:
            EXPECT(&f, FLEET__PB_VARINT, "AttributeProto.type");
            a->type = (int)f.varint;
            break;
        case 2:
            EXPECT(&f, FLEET__PB_FIXED32, "AttributeProto.f");
            a->f = fleet__pb_float(f.varint);
            type_seen = FLEET__ONNX_ATTR_FLOAT;
            break;
        case 3:
            EXPECT(&f, FLEET__PB_VARINT, "AttributeProto.i");
            a->i = fleet__pb_int64(f.varint);
            type_seen = FLEET__ONNX_ATTR_INT;
            break;
        case 4:
            EXPECT(&f, FLEET__PB_BYTES, "AttributeProto.s");
            a->s = f.bytes;
            type_seen = FLEET__ONNX_ATTR_STRING;
            break;
        case 5:
            EXPECT(&f, FLEET__PB_BYTES, "AttributeProto.t");
            if ((a->t = arena_alloc(c->arena, 1, sizeof *a->t)) == NULL)
                return no_memory();
            if ((st = decode_tensor(c, f.bytes, a->t)) != FLEET_OK)
                return st;
            type_seen = FLEET__ONNX_ATTR_TENSOR;
            break;
        case 6:
            EXPECT(&f, FLEET__PB_BYTES, "AttributeProto.g");
            type_seen = FLEET__ONNX_ATTR_GRAPH;
            break;
        case 9:
            EXPECT(&f, FLEET__PB_BYTES, "AttributeProto.strings");
            if (strings < a->n_strings)
                a->strings[strings++] = f.bytes;
            break;
        default:
            break;
        }
    }
    if (got < 0)
        return FLEET_ERR_INVALID_MODEL;
    if ((st = decode_list(c, msg, 8, FLEET__PB_VARINT, (void **)&a->ints, &a->n_ints)) !=
            FLEET_OK ||
        (st = decode_list(c, msg, 7, FLEET__PB_FIXED32, (void **)&a->floats, &a->n_floats)) !=
            FLEET_OK)
        return st;
    if (a->type == 0) { /* IR version 1: no discriminator; infer it */
        a->type = type_seen;
        if (a->n_ints > 0)
            a->type = FLEET__ONNX_ATTR_INTS;
        else if (a->n_floats > 0)
            a->type = FLEET__ONNX_ATTR_FLOATS;
        else if (a->n_strings > 0)
            a->type = FLEET__ONNX_ATTR_STRINGS;
    }
    return FLEET_OK;
}

static fleet_status decode_node(const ctx *c, fleet__pb_slice msg, fleet__onnx_node *n)
{
    memset(n, 0, sizeof *n);
    n->offset = offset_in(c, msg);
    n->name = n->op_type = n->domain = (fleet__onnx_str){msg.p, 0};
    fleet_status st;
    if ((st = count(c, msg, 1, FLEET__ONNX_MAX_NODE_IO, "node inputs", &n->n_inputs)) !=
            FLEET_OK ||
        (st = count(c, msg, 2, FLEET__ONNX_MAX_NODE_IO, "node outputs", &n->n_outputs)) !=
            FLEET_OK ||
        (st = count(c, msg, 5, FLEET__ONNX_MAX_ATTRS, "node attributes", &n->n_attrs)) != FLEET_OK)
        return st;
    if (!array(c->arena, (void **)&n->inputs, n->n_inputs, sizeof *n->inputs) ||
        !array(c->arena, (void **)&n->outputs, n->n_outputs, sizeof *n->outputs) ||
        !array(c->arena, (void **)&n->attrs, n->n_attrs, sizeof *n->attrs))
        return no_memory();
    int ni = 0, no = 0, na = 0;
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        switch (f.number) {
        case 1:
            EXPECT(&f, FLEET__PB_BYTES, "NodeProto.input");
            if (ni < n->n_inputs) /* counted above: always */
                n->inputs[ni++] = f.bytes;
            break;
        case 2:
            EXPECT(&f, FLEET__PB_BYTES, "NodeProto.output");
            if (no < n->n_outputs)
                n->outputs[no++] = f.bytes;
            break;
        case 3:
            EXPECT(&f, FLEET__PB_BYTES, "NodeProto.name");
            n->name = f.bytes;
            break;
        case 4:
            EXPECT(&f, FLEET__PB_BYTES, "NodeProto.op_type");
            n->op_type = f.bytes;
            break;
        case 7:
            EXPECT(&f, FLEET__PB_BYTES, "NodeProto.domain");
            n->domain = f.bytes;
            break;
        case 5:
            EXPECT(&f, FLEET__PB_BYTES, "NodeProto.attribute");
            if (na < n->n_attrs && (st = decode_attr(c, f.bytes, &n->attrs[na++])) != FLEET_OK)
                return st;
            break;
        default:
            break;
        }
    }
    return got < 0 ? FLEET_ERR_INVALID_MODEL : FLEET_OK;
}

static fleet_status decode_shape(const ctx *c, fleet__pb_slice msg, fleet__onnx_value_info *v)
{
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    v->has_shape = true;
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        if (f.number != 1)
            continue;
        EXPECT(&f, FLEET__PB_BYTES, "TensorShapeProto.dim");
        if (v->ndim == FLEET_MAX_DIMS)
            return fleet__pb_error(f.offset, "a value of more than 8 dimensions (fleet's most)");
        fleet__onnx_dim *d = &v->dims[v->ndim++];
        fleet__pb_reader dr = fleet__pb_reader_of(f.bytes, c->base);
        fleet__pb_field g;
        while ((got = fleet__pb_next(&dr, &g)) > 0) {
            if (g.number == 1) {
                EXPECT(&g, FLEET__PB_VARINT, "Dimension.dim_value");
                d->has_value = true;
                d->has_param = false;
                d->value = fleet__pb_int64(g.varint);
            } else if (g.number == 2) {
                EXPECT(&g, FLEET__PB_BYTES, "Dimension.dim_param");
                d->has_param = true;
                d->has_value = false;
                d->param = g.bytes;
            }
        }
        if (got < 0)
            return FLEET_ERR_INVALID_MODEL;
    }
    return got < 0 ? FLEET_ERR_INVALID_MODEL : FLEET_OK;
}

static fleet_status decode_value_info(const ctx *c, fleet__pb_slice msg, fleet__onnx_value_info *v)
{
    memset(v, 0, sizeof *v);
    v->name = (fleet__onnx_str){msg.p, 0};
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        if (f.number == 1) {
            EXPECT(&f, FLEET__PB_BYTES, "ValueInfoProto.name");
            v->name = f.bytes;
        } else if (f.number == 2) {
            EXPECT(&f, FLEET__PB_BYTES, "ValueInfoProto.type");
            fleet__pb_reader tr = fleet__pb_reader_of(f.bytes, c->base);
            fleet__pb_field g;
            while ((got = fleet__pb_next(&tr, &g)) > 0) {
                if (g.number != 1)
                    continue; /* sequence, map, optional, sparse: not a tensor */
                EXPECT(&g, FLEET__PB_BYTES, "TypeProto.tensor_type");
                v->is_tensor = true;
                fleet__pb_reader er = fleet__pb_reader_of(g.bytes, c->base);
                fleet__pb_field h;
                while ((got = fleet__pb_next(&er, &h)) > 0) {
                    fleet_status st;
                    if (h.number == 1) {
                        EXPECT(&h, FLEET__PB_VARINT, "TypeProto.Tensor.elem_type");
                        v->elem_type = (int32_t)h.varint;
                    } else if (h.number == 2) {
                        EXPECT(&h, FLEET__PB_BYTES, "TypeProto.Tensor.shape");
                        if ((st = decode_shape(c, h.bytes, v)) != FLEET_OK)
                            return st;
                    }
                }
                if (got < 0)
                    return FLEET_ERR_INVALID_MODEL;
            }
            if (got < 0)
                return FLEET_ERR_INVALID_MODEL;
        }
    }
    return got < 0 ? FLEET_ERR_INVALID_MODEL : FLEET_OK;
}

static fleet_status decode_graph(const ctx *c, fleet__pb_slice msg, fleet__onnx_graph *g)
{
    memset(g, 0, sizeof *g);
    g->name = (fleet__onnx_str){msg.p, 0};
    fleet_status st;
    if ((st = count(c, msg, 1, FLEET__ONNX_MAX_NODES, "nodes", &g->n_nodes)) != FLEET_OK ||
        (st = count(c, msg, 5, FLEET__ONNX_MAX_VALUES, "initializers", &g->n_initializers)) !=
            FLEET_OK ||
        (st = count(c, msg, 15, FLEET__ONNX_MAX_VALUES, "sparse initializers",
                    &g->n_sparse_initializers)) != FLEET_OK ||
        (st = count(c, msg, 11, FLEET__ONNX_MAX_VALUES, "graph inputs", &g->n_inputs)) !=
            FLEET_OK ||
        (st = count(c, msg, 12, FLEET__ONNX_MAX_VALUES, "graph outputs", &g->n_outputs)) !=
            FLEET_OK ||
        (st = count(c, msg, 13, FLEET__ONNX_MAX_VALUES, "value infos", &g->n_value_infos)) !=
            FLEET_OK)
        return st;
    fleet__onnx_arena *a = c->arena;
    if (!array(a, (void **)&g->nodes, g->n_nodes, sizeof *g->nodes) ||
        !array(a, (void **)&g->initializers, g->n_initializers, sizeof *g->initializers) ||
        !array(a, (void **)&g->inputs, g->n_inputs, sizeof *g->inputs) ||
        !array(a, (void **)&g->outputs, g->n_outputs, sizeof *g->outputs) ||
        !array(a, (void **)&g->value_infos, g->n_value_infos, sizeof *g->value_infos))
        return no_memory();
    int nn = 0, ni = 0, nin = 0, nout = 0, nvi = 0;
    fleet__pb_reader r = fleet__pb_reader_of(msg, c->base);
    fleet__pb_field f;
    int got;
    while ((got = fleet__pb_next(&r, &f)) > 0) {
        st = FLEET_OK;
        switch (f.number) {
        case 1:
            EXPECT(&f, FLEET__PB_BYTES, "GraphProto.node");
            st = nn < g->n_nodes ? decode_node(c, f.bytes, &g->nodes[nn++]) : FLEET_ERR_INTERNAL;
            break;
        case 2:
            EXPECT(&f, FLEET__PB_BYTES, "GraphProto.name");
            g->name = f.bytes;
            break;
        case 5:
            EXPECT(&f, FLEET__PB_BYTES, "GraphProto.initializer");
            st = ni < g->n_initializers ? decode_tensor(c, f.bytes, &g->initializers[ni++])
                                        : FLEET_ERR_INTERNAL;
            break;
        case 11:
            EXPECT(&f, FLEET__PB_BYTES, "GraphProto.input");
            st = nin < g->n_inputs ? decode_value_info(c, f.bytes, &g->inputs[nin++])
                                   : FLEET_ERR_INTERNAL;
            break;
        case 12:
            EXPECT(&f, FLEET__PB_BYTES, "GraphProto.output");
            st = nout < g->n_outputs ? decode_value_info(c, f.bytes, &g->outputs[nout++])
                                     : FLEET_ERR_INTERNAL;
            break;
        case 13:
            EXPECT(&f, FLEET__PB_BYTES, "GraphProto.value_info");
            st = nvi < g->n_value_infos ? decode_value_info(c, f.bytes, &g->value_infos[nvi++])
                                        : FLEET_ERR_INTERNAL;
            break;
        default:
            break;
        }
        if (st != FLEET_OK)
            return st;
    }
    return got < 0 ? FLEET_ERR_INVALID_MODEL : FLEET_OK;
}

fleet_status fleet__onnx_parse(const uint8_t *buf, size_t size, fleet__onnx_model *out)
{
    memset(out, 0, sizeof *out);
    if (buf == NULL && size > 0)
        return fleet__error(FLEET_ERR_NULL_POINTER, "onnx: no bytes to read");
    fleet__onnx_arena *arena = fleet__calloc(1, sizeof *arena);
    if (arena == NULL)
        return no_memory();
    ctx c = {.base = buf, .arena = arena};
    fleet__onnx_model m = {.base = buf, .size = size, .arena = arena};
    fleet__pb_slice all = {buf, size};
    fleet_status st = count(&c, all, 8, 1024, "opset imports", &m.n_opsets);
    if (st == FLEET_OK && m.n_opsets > 0 &&
        (m.opsets = arena_alloc(arena, (size_t)m.n_opsets, sizeof *m.opsets)) == NULL)
        st = no_memory();
    int no = 0, got = 0;
    fleet__pb_reader r = fleet__pb_reader_of(all, buf);
    fleet__pb_field f;
    while (st == FLEET_OK && (got = fleet__pb_next(&r, &f)) > 0) {
        switch (f.number) {
        case 1:
            if (f.wire != FLEET__PB_VARINT) {
                st = wrong_wire(&f, "ModelProto.ir_version");
                break;
            }
            m.ir_version = fleet__pb_int64(f.varint);
            break;
        case 2:
        case 3:
            if (f.wire != FLEET__PB_BYTES) {
                st = wrong_wire(&f, "ModelProto.producer_name or producer_version");
                break;
            }
            *(f.number == 2 ? &m.producer_name : &m.producer_version) = f.bytes;
            break;
        case 7:
            if (f.wire != FLEET__PB_BYTES) {
                st = wrong_wire(&f, "ModelProto.graph");
                break;
            }
            m.has_graph = true;
            st = decode_graph(&c, f.bytes, &m.graph);
            break;
        case 8: {
            if (f.wire != FLEET__PB_BYTES) {
                st = wrong_wire(&f, "ModelProto.opset_import");
                break;
            }
            if (no == m.n_opsets)
                break; /* counted above: never */
            fleet__onnx_opset *o = &m.opsets[no++];
            o->domain = (fleet__onnx_str){f.bytes.p, 0};
            fleet__pb_reader or = fleet__pb_reader_of(f.bytes, buf);
            fleet__pb_field g;
            while ((got = fleet__pb_next(&or, &g)) > 0) {
                if (g.number == 1 && g.wire == FLEET__PB_BYTES)
                    o->domain = g.bytes;
                else if (g.number == 2 && g.wire == FLEET__PB_VARINT)
                    o->version = fleet__pb_int64(g.varint);
                else if (g.number == 1 || g.number == 2)
                    st = wrong_wire(&g, "OperatorSetIdProto's domain or version");
            }
            if (got < 0)
                st = FLEET_ERR_INVALID_MODEL;
            break;
        }
        case 25:
            m.n_functions++;
            break;
        default:
            break;
        }
    }
    if (st == FLEET_OK && got < 0)
        st = FLEET_ERR_INVALID_MODEL;
    if (st == FLEET_OK && !m.has_graph)
        st = fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: the file has no graph (is it an ONNX "
                          "model?)");
    if (st != FLEET_OK) {
        arena_free(arena);
        return st;
    }
    *out = m;
    return FLEET_OK;
}

fleet_status fleet__onnx_parse_tensor(const uint8_t *buf, size_t size, fleet__onnx_model *holder,
                                      fleet__onnx_tensor *out)
{
    memset(holder, 0, sizeof *holder);
    holder->base = buf;
    holder->size = size;
    ctx c = {.base = buf};
    return decode_tensor(&c, (fleet__pb_slice){buf, size}, out);
}

void fleet__onnx_model_free(fleet__onnx_model *m)
{
    arena_free(m->arena);
    memset(m, 0, sizeof *m);
}

/* ---- names and data ------------------------------------------------------------------ */

bool fleet__onnx_str_eq(fleet__onnx_str a, fleet__onnx_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool fleet__onnx_str_is(fleet__onnx_str a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && memcmp(a.p, s, n) == 0;
}

size_t fleet__onnx_elem_size(int32_t data_type)
{
    switch (data_type) {
    case FLEET__ONNX_FLOAT: case FLEET__ONNX_INT32: case FLEET__ONNX_UINT32: return 4;
    case FLEET__ONNX_UINT8: case FLEET__ONNX_INT8: case FLEET__ONNX_BOOL: return 1;
    case FLEET__ONNX_UINT16: case FLEET__ONNX_INT16: case FLEET__ONNX_FLOAT16:
    case FLEET__ONNX_BFLOAT16: return 2;
    case FLEET__ONNX_INT64: case FLEET__ONNX_DOUBLE: case FLEET__ONNX_UINT64: return 8;
    default: return 0;
    }
}

int64_t fleet__onnx_tensor_numel(const fleet__onnx_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(n, t->dims[i], &n) || n > ((int64_t)1 << 56))
            return -1;
    return n;
}

/* The typed field that holds t's elements when raw_data is absent. */
static void typed_field(int32_t data_type, uint32_t *number, int *wire)
{
    switch (data_type) {
    case FLEET__ONNX_FLOAT: *number = 4; *wire = FLEET__PB_FIXED32; break;
    case FLEET__ONNX_INT64: *number = 7; *wire = FLEET__PB_VARINT; break;
    case FLEET__ONNX_DOUBLE: *number = 10; *wire = FLEET__PB_FIXED64; break;
    case FLEET__ONNX_UINT32: case FLEET__ONNX_UINT64: *number = 11; *wire = FLEET__PB_VARINT; break;
    default: *number = 5; *wire = FLEET__PB_VARINT; break; /* int32_data: the narrow types */
    }
}

fleet_status fleet__onnx_tensor_read(const fleet__onnx_model *m, const fleet__onnx_tensor *t,
                                     void *dst, size_t bytes)
{
    size_t es = fleet__onnx_elem_size(t->data_type);
    int64_t numel = fleet__onnx_tensor_numel(t);
    if (es == 0 || numel < 0 || (uint64_t)numel * es != bytes)
        return fleet__pb_error(t->offset, "a tensor whose dtype or size fleet cannot read");
    if (t->external)
        return fleet__pb_error(t->offset, "external tensor data read as internal (a bug)");
    if (t->has_raw) {
        if (t->raw.n != bytes)
            return fleet__pb_error(t->offset, "a tensor whose raw_data does not match its dims");
        if (bytes > 0)
            memcpy(dst, t->raw.p, bytes);
        return FLEET_OK;
    }
    uint32_t number;
    int wire;
    typed_field(t->data_type, &number, &wire);
    fleet__pb_repeated it = fleet__pb_repeated_of(t->msg, m->base, number, wire);
    uint64_t v;
    int got;
    int64_t i = 0;
    unsigned char *out = dst;
    while ((got = fleet__pb_repeated_next(&it, &v)) > 0) {
        if (i == numel)
            return fleet__pb_error(t->offset, "a tensor with more data than its dims hold");
        memcpy(out + (size_t)i * es, &v, es); /* the low bytes: little-endian */
        i++;
    }
    if (got < 0)
        return FLEET_ERR_INVALID_MODEL;
    if (i != numel)
        return fleet__pb_error(t->offset, "a tensor with less data than its dims hold");
    return FLEET_OK;
}
