/* onnx_reader — fleet's protobuf wire reader and ONNX message decoder on
 * models written here field by field: every field it reads (packed and
 * unpacked repeated fields, raw and typed tensor data, external data
 * entries, named dimensions, every attribute kind), unknown fields skipped,
 * and malformed bytes refused with FLEET_ERR_INVALID_MODEL and the byte
 * offset: over-long varints, lengths past the end, groups, field number 0,
 * wrong wire types, more than 8 dimensions. Every prefix and every one-byte
 * corruption of a valid model is parsed without a crash (run it under ASan
 * to see no read leaves the buffer). Real files: onnx_node_tests. */
#include "onnx/onnx_proto.h"
#include "pb_writer.h"
#include "test_util.h"

static fleet__onnx_model parsed;

static void value_info(pbw *graph, uint32_t field, const char *name, int elem_type,
                       const char *param0, int64_t dim1)
{
    pbw d0 = {0}, d1 = {0}, shape = {0}, tensor = {0}, type = {0}, vi = {0};
    if (param0 != NULL)
        pbw_str(&d0, 2, param0);
    pbw_varint(&d1, 1, (uint64_t)dim1);
    pbw_msg(&shape, 1, &d0);
    pbw_msg(&shape, 1, &d1);
    pbw_varint(&tensor, 1, (uint64_t)elem_type);
    pbw_msg(&tensor, 2, &shape);
    pbw_msg(&type, 1, &tensor);
    pbw_str(&vi, 1, name);
    pbw_msg(&vi, 2, &type);
    pbw_msg(graph, field, &vi);
    pbw_free(&d0);
    pbw_free(&d1);
    pbw_free(&shape);
    pbw_free(&tensor);
    pbw_free(&type);
    pbw_free(&vi);
}

static void attr_begin(pbw *a, const char *name, int type)
{
    *a = (pbw){0};
    pbw_str(a, 1, name);
    pbw_varint(a, 20, (uint64_t)type);
}

static void entry(pbw *t, const char *key, const char *value)
{
    pbw e = {0};
    pbw_str(&e, 1, key);
    pbw_str(&e, 2, value);
    pbw_msg(t, 13, &e);
    pbw_free(&e);
}

/* A model with one of everything the reader decodes. */
static pbw sample_model(void)
{
    pbw n1 = {0}, n2 = {0}, a = {0}, t = {0}, g = {0}, m = {0}, op = {0}, w = {0}, b = {0};
    pbw ext = {0}, seq = {0}, vi = {0}, st = {0};
    pbw_str(&n1, 1, "x");
    pbw_str(&n1, 1, "w");
    pbw_str(&n1, 2, "y");
    pbw_str(&n1, 3, "mm");
    pbw_str(&n1, 4, "MatMul");

    pbw_str(&n2, 1, "y");
    pbw_str(&n2, 1, ""); /* an optional input left out */
    pbw_str(&n2, 2, "z");
    pbw_str(&n2, 4, "Relu");
    pbw_str(&n2, 7, "ai.onnx");
    attr_begin(&a, "alpha", FLEET__ONNX_ATTR_FLOAT);
    pbw_float(&a, 2, 0.5f);
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);
    attr_begin(&a, "axes", FLEET__ONNX_ATTR_INTS);
    const int64_t axes[] = {1, -2};
    pbw_packed_varints(&a, 8, axes, 2);
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);
    attr_begin(&a, "pads", FLEET__ONNX_ATTR_INTS); /* unpacked */
    pbw_varint(&a, 8, 0);
    pbw_varint(&a, 8, 1);
    pbw_varint(&a, 8, 2);
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);
    attr_begin(&a, "mode", FLEET__ONNX_ATTR_STRING);
    pbw_str(&a, 4, "constant");
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);
    attr_begin(&a, "value", FLEET__ONNX_ATTR_TENSOR);
    pbw_varint(&t, 1, 2);
    pbw_varint(&t, 2, FLEET__ONNX_INT64);
    pbw_varint(&t, 7, 7);
    pbw_varint(&t, 7, (uint64_t)(int64_t)-3);
    pbw_msg(&a, 5, &t);
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);
    pbw_free(&t);
    attr_begin(&a, "names", FLEET__ONNX_ATTR_STRINGS);
    pbw_str(&a, 9, "a");
    pbw_str(&a, 9, "bb");
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);
    attr_begin(&a, "scales", 0); /* no type: IR version 1 style */
    pbw_float(&a, 7, 1.5f);
    pbw_float(&a, 7, 2.5f);
    pbw_msg(&n2, 5, &a);
    pbw_free(&a);

    const int64_t wd[] = {2, 3};
    pbw_str(&w, 8, "w");
    pbw_packed_varints(&w, 1, wd, 2);
    pbw_varint(&w, 2, FLEET__ONNX_FLOAT);
    float wv[6] = {1, 2, 3, 4, 5, 6};
    pbw_bytes(&w, 9, wv, sizeof wv);

    pbw_str(&b, 8, "b");
    pbw_varint(&b, 1, 3);
    pbw_varint(&b, 2, FLEET__ONNX_FLOAT);
    float bv[3] = {0.25f, -1, 8};
    pbw_bytes(&b, 4, bv, sizeof bv); /* packed float_data */

    pbw_str(&ext, 8, "ext");
    pbw_varint(&ext, 1, 4);
    pbw_varint(&ext, 2, FLEET__ONNX_FLOAT);
    pbw_varint(&ext, 14, 1);
    entry(&ext, "location", "w.bin");
    entry(&ext, "offset", "4096");
    entry(&ext, "length", "16");

    pbw_msg(&g, 1, &n1);
    pbw_msg(&g, 1, &n2);
    pbw_str(&g, 2, "sample");
    pbw_msg(&g, 5, &w);
    pbw_msg(&g, 5, &b);
    pbw_msg(&g, 5, &ext);
    value_info(&g, 11, "x", FLEET__ONNX_FLOAT, "batch", 2);
    value_info(&g, 12, "z", FLEET__ONNX_FLOAT, NULL, 3);
    pbw_varint(&st, 1, 1);
    pbw_msg(&seq, 4, &st); /* a sequence type: not a tensor */
    pbw_str(&vi, 1, "y");
    pbw_msg(&vi, 2, &seq);
    pbw_msg(&g, 13, &vi);
    pbw_varint(&g, 99, 12345); /* unknown: skipped */

    pbw_varint(&m, 1, 8);
    pbw_str(&op, 1, "");
    pbw_varint(&op, 2, 17);
    pbw_msg(&m, 8, &op);
    pbw_str(&m, 2, "fleet-test");
    pbw_msg(&m, 7, &g);
    pbw *all[] = {&n1, &n2, &g, &op, &w, &b, &ext, &seq, &vi, &st};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pbw_free(all[i]);
    return m;
}

static fleet__onnx_attr *attr(fleet__onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (fleet__onnx_str_is(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

TEST(every_field_decoded)
{
    pbw m = sample_model();
    ASSERT_OK(fleet__onnx_parse(m.p, m.n, &parsed));
    ASSERT_EQ(parsed.ir_version, 8);
    ASSERT_EQ(parsed.n_opsets, 1);
    ASSERT_EQ(parsed.opsets[0].version, 17);
    ASSERT_TRUE(fleet__onnx_str_is(parsed.opsets[0].domain, ""));
    ASSERT_TRUE(fleet__onnx_str_is(parsed.producer_name, "fleet-test"));
    fleet__onnx_graph *g = &parsed.graph;
    ASSERT_TRUE(fleet__onnx_str_is(g->name, "sample"));
    ASSERT_EQ(g->n_nodes, 2);
    ASSERT_TRUE(fleet__onnx_str_is(g->nodes[0].op_type, "MatMul"));
    ASSERT_TRUE(fleet__onnx_str_is(g->nodes[0].name, "mm"));
    ASSERT_EQ(g->nodes[0].n_inputs, 2);
    ASSERT_TRUE(fleet__onnx_str_is(g->nodes[0].inputs[1], "w"));
    fleet__onnx_node *r = &g->nodes[1];
    ASSERT_TRUE(fleet__onnx_str_is(r->domain, "ai.onnx"));
    ASSERT_EQ(r->n_inputs, 2);
    ASSERT_EQ(r->inputs[1].n, 0u);
    ASSERT_EQ(r->n_attrs, 7);
    ASSERT_TRUE(attr(r, "alpha")->type == FLEET__ONNX_ATTR_FLOAT && attr(r, "alpha")->f == 0.5f);
    fleet__onnx_attr *ax = attr(r, "axes"), *pads = attr(r, "pads");
    ASSERT_TRUE(ax->n_ints == 2 && ax->ints[0] == 1 && ax->ints[1] == -2);
    ASSERT_TRUE(pads->n_ints == 3 && pads->ints[2] == 2);
    ASSERT_TRUE(fleet__onnx_str_is(attr(r, "mode")->s, "constant"));
    fleet__onnx_attr *val = attr(r, "value");
    ASSERT_TRUE(val->type == FLEET__ONNX_ATTR_TENSOR && val->t != NULL);
    int64_t iv[2];
    ASSERT_OK(fleet__onnx_tensor_read(&parsed, val->t, iv, sizeof iv));
    ASSERT_TRUE(iv[0] == 7 && iv[1] == -3);
    fleet__onnx_attr *names = attr(r, "names");
    ASSERT_TRUE(names->n_strings == 2 && fleet__onnx_str_is(names->strings[1], "bb"));
    fleet__onnx_attr *sc = attr(r, "scales");
    ASSERT_TRUE(sc->type == FLEET__ONNX_ATTR_FLOATS && sc->n_floats == 2 && sc->floats[1] == 2.5f);

    ASSERT_EQ(g->n_initializers, 3);
    fleet__onnx_tensor *w = &g->initializers[0], *b = &g->initializers[1];
    fleet__onnx_tensor *ext = &g->initializers[2];
    ASSERT_TRUE(w->ndim == 2 && w->dims[0] == 2 && w->dims[1] == 3 && w->has_raw);
    float wv[6], bv[3];
    ASSERT_OK(fleet__onnx_tensor_read(&parsed, w, wv, sizeof wv));
    ASSERT_TRUE(wv[0] == 1 && wv[5] == 6);
    ASSERT_TRUE(b->ndim == 1 && b->dims[0] == 3 && !b->has_raw);
    ASSERT_OK(fleet__onnx_tensor_read(&parsed, b, bv, sizeof bv));
    ASSERT_TRUE(bv[0] == 0.25f && bv[1] == -1 && bv[2] == 8);
    ASSERT_REFUSED(fleet__onnx_tensor_read(&parsed, b, bv, sizeof bv - 4),
                   FLEET_ERR_INVALID_MODEL, "cannot read");
    ASSERT_TRUE(ext->external && fleet__onnx_str_is(ext->location, "w.bin"));
    ASSERT_TRUE(ext->ext_offset == 4096 && ext->ext_length == 16);

    ASSERT_EQ(g->n_inputs, 1);
    fleet__onnx_value_info *x = &g->inputs[0];
    ASSERT_TRUE(x->is_tensor && x->elem_type == FLEET__ONNX_FLOAT && x->has_shape);
    ASSERT_TRUE(x->ndim == 2 && x->dims[0].has_param);
    ASSERT_TRUE(fleet__onnx_str_is(x->dims[0].param, "batch"));
    ASSERT_TRUE(x->dims[1].has_value && x->dims[1].value == 2);
    fleet__onnx_value_info *z = &g->outputs[0];
    ASSERT_TRUE(!z->dims[0].has_value && !z->dims[0].has_param); /* unknown */
    ASSERT_TRUE(g->n_value_infos == 1 && !g->value_infos[0].is_tensor);
    fleet__onnx_model_free(&parsed);
    pbw_free(&m);
}

/* A model whose graph holds one initializer built by `fill`; its bytes
 * stay in `held` (the parsed model points into them) until the next call. */
static pbw held;

static fleet_status parse_with_tensor(void (*fill)(pbw *t))
{
    pbw t = {0}, g = {0};
    pbw_free(&held);
    fill(&t);
    pbw_msg(&g, 5, &t);
    pbw_msg(&held, 7, &g);
    fleet_status st = fleet__onnx_parse(held.p, held.n, &parsed);
    pbw_free(&t);
    pbw_free(&g);
    return st;
}

static void nine_dims(pbw *t)
{
    for (int i = 0; i < 9; i++)
        pbw_varint(t, 1, 1);
}

static void negative_dim(pbw *t)
{
    pbw_varint(t, 1, (uint64_t)(int64_t)-4);
}

static void external_nowhere(pbw *t)
{
    pbw_varint(t, 14, 1);
}

static void bad_offset(pbw *t)
{
    pbw_varint(t, 14, 1);
    entry(t, "location", "x.bin");
    entry(t, "offset", "12ab");
}

static void name_as_varint(pbw *t)
{
    pbw_varint(t, 8, 5);
}

static void short_typed_data(pbw *t)
{
    pbw_varint(t, 1, 3);
    pbw_varint(t, 2, FLEET__ONNX_INT64);
    pbw_varint(t, 7, 1);
    pbw_varint(t, 7, 2);
}

TEST(malformed_bytes_are_refused_with_the_offset)
{
    static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x81, 0x01};
    static const uint8_t over_64_bits[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t past_end[] = {0x3a, 0x05, 0x0a, 0x00};      /* graph of 5 bytes, 2 left */
    static const uint8_t group[] = {0x3b, 0x00};                     /* field 7, wire type 3 */
    static const uint8_t field_zero[] = {0x00, 0x01};
    static const uint8_t truncated[] = {0x08};
    static const uint8_t graph_as_varint[] = {0x38, 0x01};
    struct {
        const uint8_t *p;
        size_t n;
        const char *needle;
    } cases[] = {
        {long_varint, sizeof long_varint, "varint longer than 10 bytes at byte 1"},
        {over_64_bits, sizeof over_64_bits, "varint over 64 bits at byte 1"},
        {past_end, sizeof past_end, "a length past the end of its message at byte 0"},
        {group, sizeof group, "a group or unknown wire type at byte 0"},
        {field_zero, sizeof field_zero, "field number 0"},
        {truncated, sizeof truncated, "truncated varint at byte 1"},
        {graph_as_varint, sizeof graph_as_varint, "ModelProto.graph has wire type 0 at byte 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_REFUSED(fleet__onnx_parse(cases[i].p, cases[i].n, &parsed),
                       FLEET_ERR_INVALID_MODEL, cases[i].needle);
        ASSERT_TRUE(parsed.arena == NULL && parsed.graph.nodes == NULL);
    }
    ASSERT_REFUSED(fleet__onnx_parse((const uint8_t *)"", 0, &parsed), FLEET_ERR_INVALID_MODEL,
                   "no graph");
    ASSERT_REFUSED(parse_with_tensor(nine_dims), FLEET_ERR_INVALID_MODEL, "more than 8 dimensions");
    ASSERT_REFUSED(parse_with_tensor(negative_dim), FLEET_ERR_INVALID_MODEL, "negative dimension");
    ASSERT_REFUSED(parse_with_tensor(external_nowhere), FLEET_ERR_INVALID_MODEL,
                   "without a location");
    ASSERT_REFUSED(parse_with_tensor(bad_offset), FLEET_ERR_INVALID_MODEL, "not a decimal");
    ASSERT_REFUSED(parse_with_tensor(name_as_varint), FLEET_ERR_INVALID_MODEL,
                   "TensorProto.name has wire type 0");
    ASSERT_OK(parse_with_tensor(short_typed_data)); /* sizes are checked when read */
    int64_t three[3];
    ASSERT_REFUSED(fleet__onnx_tensor_read(&parsed, &parsed.graph.initializers[0], three,
                                           sizeof three),
                   FLEET_ERR_INVALID_MODEL, "less data than its dims hold");
    fleet__onnx_model_free(&parsed);
    pbw_free(&held);
}

/* Every prefix and every byte flipped: parsed or refused, never a crash or a
 * read outside the buffer (each case parses a copy of exactly its size). */
TEST(prefixes_and_corruptions_never_crash)
{
    pbw m = sample_model();
    int ok = 0, refused = 0;
    for (size_t n = 0; n <= m.n; n++) {
        uint8_t *copy = malloc(n > 0 ? n : 1);
        memcpy(copy, m.p, n);
        fleet_status st = fleet__onnx_parse(copy, n, &parsed);
        ASSERT_TRUE(st == FLEET_OK || st == FLEET_ERR_INVALID_MODEL);
        if (st == FLEET_OK) {
            ok++;
            fleet__onnx_model_free(&parsed);
        } else {
            refused++;
        }
        free(copy);
    }
    ASSERT_TRUE(ok >= 1 && refused > (int)m.n / 2);
    for (size_t i = 0; i < m.n; i++) {
        uint8_t *copy = malloc(m.n);
        memcpy(copy, m.p, m.n);
        copy[i] ^= 0xa5;
        fleet_status st = fleet__onnx_parse(copy, m.n, &parsed);
        ASSERT_TRUE(st == FLEET_OK || st == FLEET_ERR_INVALID_MODEL);
        if (st == FLEET_OK) {
            for (int k = 0; k < parsed.graph.n_initializers; k++) {
                fleet__onnx_tensor *t = &parsed.graph.initializers[k];
                int64_t numel = fleet__onnx_tensor_numel(t);
                size_t es = fleet__onnx_elem_size(t->data_type);
                if (t->external || numel < 0 || es == 0 || numel > 4096)
                    continue;
                void *dst = malloc((size_t)numel * es + 1);
                fleet_status rs = fleet__onnx_tensor_read(&parsed, t, dst, (size_t)numel * es);
                ASSERT_TRUE(rs == FLEET_OK || rs == FLEET_ERR_INVALID_MODEL);
                free(dst);
            }
            fleet__onnx_model_free(&parsed);
        }
        free(copy);
    }
    pbw_free(&m);
}

TEST_MAIN()
