/* onnx/onnx_ops.c — the operator translators: each ONNX node that did not
 * fold becomes builder calls (fleet/model.h) on the values of its inputs.
 * An attribute or dtype fleet lacks is FLEET_ERR_UNSUPPORTED with its
 * reason (the loader lists it); an input the graph does not define, or
 * attributes that contradict the spec, FLEET_ERR_INVALID_MODEL. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/prim.h"
#include "model/graph.h"
#include "onnx/import.h"

#define B FLEET_DIM_BATCH

/* ---- helpers --------------------------------------------------------------------------- */

/* Input k as a model value (a constant materialised); *iv its entry. */
static fleet_status in_value(fleet__importer *im, const fleet__onnx_node *n, int k,
                             fleet_value *v, fleet__ival **iv)
{
    fleet__ival *e;
    fleet_status st = fleet__imp_input(im, n, k, &e);
    if (st != FLEET_OK)
        return st;
    if (e == NULL)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s' (%.*s) lacks input %d",
                            (int)n->name.n, (const char *)n->name.p, (int)n->op_type.n,
                            (const char *)n->op_type.p, k);
    if (iv != NULL)
        *iv = e;
    return fleet__imp_value(im, e, v);
}

/* Input k, or FLEET_NO_VALUE when absent. */
static fleet_status in_optional(fleet__importer *im, const fleet__onnx_node *n, int k,
                                fleet_value *v)
{
    fleet__ival *e;
    fleet_status st = fleet__imp_input(im, n, k, &e);
    *v = FLEET_NO_VALUE;
    return st != FLEET_OK || e == NULL ? st : fleet__imp_value(im, e, v);
}

static fleet_status out(fleet__importer *im, const fleet__onnx_node *n, fleet_value v)
{
    return fleet__imp_out_graph(im, n, 0, v);
}

static const fleet__value *val(const fleet__importer *im, fleet_value v)
{
    return &im->m->values[v];
}

/* Only output 0 wanted (the optional others unnamed). */
static fleet_status one_output(const fleet__onnx_node *n)
{
    for (int k = 1; k < n->n_outputs; k++)
        if (n->outputs[k].n != 0)
            return fleet__imp_unsupported(n, "output %d (only the first is computed)", k);
    return FLEET_OK;
}

static int norm_axis(int64_t axis, int ndim)
{
    return (int)(axis < 0 ? axis + ndim : axis);
}

static fleet_status scalar_const(fleet__importer *im, fleet_dtype dt, double x, fleet_value *out)
{
    unsigned char buf[8] = {0};
    if (dt == FLEET_DTYPE_F32) {
        float f = (float)x;
        memcpy(buf, &f, 4);
    } else if (dt == FLEET_DTYPE_I64) {
        int64_t i = (int64_t)x;
        memcpy(buf, &i, 8);
    } else {
        return fleet__error(FLEET_ERR_UNSUPPORTED, "a %s scalar", fleet_dtype_name(dt));
    }
    return fleet_model_constant(im->m, dt, 0, NULL, buf, out);
}

static fleet_status too_large(const fleet__onnx_node *n)
{
    return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s': sizes past 2^63",
                        (int)n->name.n, (const char *)n->name.p);
}

/* A product of dims that may hold the batch (once): a number, or -k for k
 * times the batch. */
static fleet_status dims_product(const fleet__onnx_node *n, const int64_t *d, int from, int to,
                                 int64_t *out)
{
    int64_t p = 1;
    int batches = 0;
    for (int i = from; i < to; i++) {
        batches += d[i] < 0;
        if (__builtin_mul_overflow(p, d[i] < 0 ? -d[i] : d[i], &p))
            return too_large(n);
    }
    if (batches > 1)
        return fleet__imp_unsupported(n, "a dimension made of the batch size times itself");
    *out = batches ? -p : p;
    return FLEET_OK;
}

static fleet_status reshape(fleet__importer *im, fleet_value x, int ndim, const int64_t *shape,
                            fleet_value *out)
{
    return fleet_model_reshape(im->m, x, ndim, shape, out);
}

/* ---- elementwise ----------------------------------------------------------------------- */

typedef fleet_status (*unary_fn)(fleet_model *, fleet_value, fleet_value *);
typedef fleet_status (*binary_fn)(fleet_model *, fleet_value, fleet_value, fleet_value *);

static fleet_status unary(fleet__importer *im, const fleet__onnx_node *n, unary_fn fn)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st == FLEET_OK)
        st = fn(im->m, x, &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

#define UNARY(Op, fn)                                                                    \
    static fleet_status t_##Op(fleet__importer *im, const fleet__onnx_node *n)          \
    {                                                                                    \
        return unary(im, n, fn);                                                         \
    }
UNARY(Relu, fleet_model_relu)
UNARY(Sigmoid, fleet_model_sigmoid)
UNARY(Tanh, fleet_model_tanh)
UNARY(Exp, fleet_model_exp)
UNARY(Log, fleet_model_log)
UNARY(Sqrt, fleet_model_sqrt)
UNARY(Erf, fleet_model_erf)
UNARY(Neg, fleet_model_neg)
UNARY(Abs, fleet_model_abs)
UNARY(Reciprocal, fleet_model_reciprocal)
#undef UNARY

/* A variadic op (Sum, Max, Min: one or more inputs) or a binary one. */
static fleet_status fold_left(fleet__importer *im, const fleet__onnx_node *n, binary_fn fn)
{
    fleet_value acc, x;
    fleet_status st = in_value(im, n, 0, &acc, NULL);
    for (int k = 1; st == FLEET_OK && k < n->n_inputs; k++)
        if ((st = in_value(im, n, k, &x, NULL)) == FLEET_OK)
            st = fn(im->m, acc, x, &acc);
    if (st == FLEET_OK && n->n_inputs == 1) /* one input: a copy of it */
        st = fleet_model_reshape(im->m, acc, val(im, acc)->ndim, val(im, acc)->shape, &acc);
    return st != FLEET_OK ? st : out(im, n, acc);
}

static fleet_status binary(fleet__importer *im, const fleet__onnx_node *n, binary_fn fn)
{
    if (n->n_inputs != 2)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: a binary op with %d inputs",
                            n->n_inputs);
    return fold_left(im, n, fn);
}

#define BINARY(Op, fn)                                                                   \
    static fleet_status t_##Op(fleet__importer *im, const fleet__onnx_node *n)          \
    {                                                                                    \
        return binary(im, n, fn);                                                        \
    }
BINARY(Add, fleet_model_add)
BINARY(Sub, fleet_model_sub)
BINARY(Mul, fleet_model_mul)
BINARY(Equal, fleet_model_equal)
BINARY(Less, fleet_model_less)
BINARY(LessOrEqual, fleet_model_less_equal)
BINARY(Greater, fleet_model_greater)
BINARY(GreaterOrEqual, fleet_model_greater_equal)
#undef BINARY

/* ---- GELU spelled out ------------------------------------------------------------------ */

/* The one node reading n's output 0, if it has that op type (else -1). */
static int only_reader(const fleet__importer *im, const fleet__onnx_node *n, const char *op)
{
    int reader;
    if (n->n_outputs < 1 || fleet__imp_readers(im, n->outputs[0], &reader) != 1 || reader < 0)
        return -1;
    const fleet__onnx_node *r = &im->om->graph.nodes[reader];
    return fleet__onnx_str_is(r->op_type, op) && r->domain.n == 0 ? reader : -1;
}

/* Whether r's operand other than `name` is a one-element constant equal to
 * v (within 1e-6 relative). */
static bool operand_is(fleet__importer *im, const fleet__onnx_node *r, fleet__onnx_str name,
                       double v)
{
    if (r->n_inputs != 2)
        return false;
    int k = fleet__onnx_str_eq(r->inputs[0], name) ? 1 : 0;
    fleet__ival *c = fleet__imp_find(im, r->inputs[k]);
    if (c == NULL || c->kind != FLEET__IV_CONST || c->numel != 1)
        return false;
    double got = fleet__imp_elem_f64(c, 0);
    return fabs(got - v) <= 1e-6 * fabs(v);
}

static bool other_is(const fleet__onnx_node *r, fleet__onnx_str name, fleet__onnx_str x)
{
    return r->n_inputs == 2 &&
           fleet__onnx_str_eq(r->inputs[fleet__onnx_str_eq(r->inputs[0], name) ? 1 : 0], x);
}

/* Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5), each the
 * only reader of the one before (as torch exports x * 0.5 * (1 + erf(x /
 * sqrt 2)); the dynamo exporter has the two Muls the other way round): one
 * gelu. *fused false when the chain is not there. */
static fleet_status gelu_chain(fleet__importer *im, const fleet__onnx_node *n, bool *fused)
{
    *fused = false;
    if (n->n_inputs != 2 || n->n_outputs < 1)
        return FLEET_OK;
    const fleet__onnx_node *g = im->om->graph.nodes;
    fleet__onnx_str x = n->inputs[0];
    int erf = only_reader(im, n, "Erf");
    if (n->n_inputs != 2 || !operand_is(im, n, x, 1.4142135623730951) ||
        fleet__onnx_str_eq(n->inputs[1], x) || erf < 0)
        return FLEET_OK;
    int add = only_reader(im, &g[erf], "Add");
    if (add < 0 || !operand_is(im, &g[add], g[erf].outputs[0], 1.0))
        return FLEET_OK;
    /* then Mul(x, .) and Mul(., 0.5) in either order (dynamo: 0.5 first) */
    int mul1 = only_reader(im, &g[add], "Mul");
    int last = mul1 < 0 ? -1 : only_reader(im, &g[mul1], "Mul");
    if (last < 0)
        return FLEET_OK;
    fleet__onnx_str a = g[add].outputs[0], m = g[mul1].outputs[0];
    if (!(other_is(&g[mul1], a, x) && operand_is(im, &g[last], m, 0.5)) &&
        !(operand_is(im, &g[mul1], a, 0.5) && other_is(&g[last], m, x)))
        return FLEET_OK;
    fleet_value xv, y;
    fleet_status st = in_value(im, n, 0, &xv, NULL);
    if (st != FLEET_OK || (st = fleet_model_gelu(im->m, xv, &y)) != FLEET_OK)
        return st;
    /* the chain's inner values have no other reader: they all become y */
    if ((st = out(im, n, y)) != FLEET_OK)
        return st;
    im->done_by[erf] = im->done_by[add] = im->done_by[mul1] = im->done_by[last] = y;
    *fused = true;
    return FLEET_OK;
}

static fleet_status t_Div(fleet__importer *im, const fleet__onnx_node *n)
{
    bool fused;
    fleet_status st = gelu_chain(im, n, &fused);
    return st != FLEET_OK || fused ? st : binary(im, n, fleet_model_div);
}

static fleet_status t_Sum(fleet__importer *im, const fleet__onnx_node *n)
{
    return fold_left(im, n, fleet_model_add);
}

static fleet_status t_Max(fleet__importer *im, const fleet__onnx_node *n)
{
    return fold_left(im, n, fleet_model_maximum);
}

static fleet_status t_Min(fleet__importer *im, const fleet__onnx_node *n)
{
    return fold_left(im, n, fleet_model_minimum);
}

/* Pow: an integer exponent of an f32 base is cast to f32. */
static fleet_status t_Pow(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet__ival *e;
    fleet_status st = fleet__imp_input(im, n, 1, &e);
    if (st != FLEET_OK)
        return st;
    fleet_value a, b, y;
    fleet__ival *base;
    if ((st = fleet__imp_input(im, n, 0, &base)) != FLEET_OK)
        return st;
    if (base == NULL || e == NULL)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Pow lacks an input");
    if (base->dtype != FLEET_DTYPE_F32 && e->dtype != base->dtype)
        return fleet__imp_unsupported(n, "a %s base (fleet computes f32)",
                                      fleet_dtype_name(base->dtype));
    if (e->dtype != base->dtype) { /* an f32 base, an integer exponent */
        if ((st = in_value(im, n, 0, &a, NULL)) != FLEET_OK ||
            (st = in_value(im, n, 1, &b, NULL)) != FLEET_OK ||
            (st = fleet_model_cast(im->m, b, FLEET_DTYPE_F32, &b)) != FLEET_OK ||
            (st = fleet_model_pow(im->m, a, b, &y)) != FLEET_OK)
            return st;
        return out(im, n, y);
    }
    return binary(im, n, fleet_model_pow);
}

static fleet_status t_Where(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value c, a, b, y;
    fleet_status st;
    if ((st = in_value(im, n, 0, &c, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 1, &a, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 2, &b, NULL)) != FLEET_OK ||
        (st = fleet_model_where(im->m, c, a, b, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* And, Or, Not of bools: selections (where), which every dtype has. */
static fleet_status logical(fleet__importer *im, const fleet__onnx_node *n, int kind)
{
    fleet_value a, b = FLEET_NO_VALUE, t, f, y;
    fleet_status st = in_value(im, n, 0, &a, NULL);
    if (st == FLEET_OK && kind != 2)
        st = in_value(im, n, 1, &b, NULL);
    if (st != FLEET_OK)
        return st;
    if (val(im, a)->dtype != FLEET_DTYPE_BOOL ||
        (b != FLEET_NO_VALUE && val(im, b)->dtype != FLEET_DTYPE_BOOL))
        return fleet__imp_unsupported(n, "operands that are not bool");
    const uint8_t one = 1, zero = 0;
    if ((st = fleet_model_constant(im->m, FLEET_DTYPE_BOOL, 0, NULL, &one, &t)) != FLEET_OK ||
        (st = fleet_model_constant(im->m, FLEET_DTYPE_BOOL, 0, NULL, &zero, &f)) != FLEET_OK)
        return st;
    if (kind == 0) /* a and b = a ? b : false */
        st = fleet_model_where(im->m, a, b, f, &y);
    else if (kind == 1) /* a or b = a ? true : b */
        st = fleet_model_where(im->m, a, t, b, &y);
    else /* not a = a ? false : true */
        st = fleet_model_where(im->m, a, f, t, &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

static fleet_status t_And(fleet__importer *im, const fleet__onnx_node *n)
{
    return logical(im, n, 0);
}

static fleet_status t_Or(fleet__importer *im, const fleet__onnx_node *n)
{
    return logical(im, n, 1);
}

static fleet_status t_Not(fleet__importer *im, const fleet__onnx_node *n)
{
    return logical(im, n, 2);
}

static fleet_status t_LeakyRelu(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st == FLEET_OK)
        st = fleet_model_leaky_relu(im->m, x, fleet__imp_attr_float(n, "alpha", 0.01f), &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

static fleet_status t_Gelu(fleet__importer *im, const fleet__onnx_node *n)
{
    bool tanh_form = fleet__imp_attr_str_is(n, "approximate", "tanh", false);
    if (!tanh_form && !fleet__imp_attr_str_is(n, "approximate", "none", true))
        return fleet__imp_unsupported(n, "approximate must be none or tanh");
    return unary(im, n, tanh_form ? fleet_model_gelu_tanh : fleet_model_gelu);
}

/* Clip: min and max attributes (before opset 11) or inputs known at load. */
static fleet_status t_Clip(fleet__importer *im, const fleet__onnx_node *n)
{
    float lo = -INFINITY, hi = INFINITY;
    if (im->opset < 11) {
        lo = fleet__imp_attr_float(n, "min", lo);
        hi = fleet__imp_attr_float(n, "max", hi);
    } else {
        for (int k = 1; k <= 2; k++) {
            fleet__ival *e;
            fleet_status st = fleet__imp_input(im, n, k, &e);
            if (st != FLEET_OK)
                return st;
            if (e == NULL)
                continue;
            if (e->kind != FLEET__IV_CONST || e->numel != 1)
                return fleet__imp_unsupported(n, "a bound computed by the graph");
            *(k == 1 ? &lo : &hi) = (float)fleet__imp_elem_f64(e, 0);
        }
    }
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st == FLEET_OK)
        st = fleet_model_clip(im->m, x, lo, hi, &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

static fleet_status t_Identity(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    return st != FLEET_OK ? st : out(im, n, x);
}

/* Dropout at inference: the identity (its mask output is not computed). */
static fleet_status t_Dropout(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet__ival *training;
    fleet_status st = fleet__imp_input(im, n, 2, &training);
    if (st != FLEET_OK || (st = one_output(n)) != FLEET_OK)
        return st;
    if (training != NULL && (training->kind != FLEET__IV_CONST ||
                             fleet__imp_elem_f64(training, 0) != 0.0))
        return fleet__imp_unsupported(n, "training_mode");
    return t_Identity(im, n);
}

static fleet_status t_Cast(fleet__importer *im, const fleet__onnx_node *n)
{
    int64_t to = fleet__imp_attr_int(n, "to", 0);
    fleet_dtype dt;
    switch (to) {
    case FLEET__ONNX_FLOAT: dt = FLEET_DTYPE_F32; break;
    case FLEET__ONNX_FLOAT16: dt = FLEET_DTYPE_F16; break;
    case FLEET__ONNX_BFLOAT16: dt = FLEET_DTYPE_BF16; break;
    case FLEET__ONNX_INT32: dt = FLEET_DTYPE_I32; break;
    case FLEET__ONNX_INT64: dt = FLEET_DTYPE_I64; break;
    case FLEET__ONNX_BOOL: dt = FLEET_DTYPE_BOOL; break;
    default: return fleet__imp_unsupported(n, "a cast to ONNX dtype %lld", (long long)to);
    }
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st == FLEET_OK)
        st = fleet_model_cast(im->m, x, dt, &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

/* ---- matrix products ------------------------------------------------------------------- */

/* MatMul(x, W) whose one reader is Add(., bias), W [K, N] and bias [N] (or
 * [1, .., N]) known at load: one linear with its bias (a GEMM with the bias
 * in its epilogue), the Add marked done. *fused false when it does not fit. */
static fleet_status matmul_bias(fleet__importer *im, const fleet__onnx_node *n, fleet_value a,
                                fleet_value b, const fleet__ival *w, bool *fused)
{
    *fused = false;
    int reader;
    if (n->n_outputs < 1 || w->kind != FLEET__IV_CONST || w->ndim != 2 || val(im, a)->ndim < 2 ||
        fleet__imp_readers(im, n->outputs[0], &reader) != 1 || reader <= im->node)
        return FLEET_OK;
    const fleet__onnx_node *add = &im->om->graph.nodes[reader];
    if (!fleet__onnx_str_is(add->op_type, "Add") || add->domain.n != 0 || add->n_inputs != 2 ||
        add->n_outputs < 1)
        return FLEET_OK;
    int other = fleet__onnx_str_eq(add->inputs[0], n->outputs[0]) ? 1 : 0;
    fleet__ival *bias = fleet__imp_find(im, add->inputs[other]);
    int64_t cols = w->shape[1];
    if (bias == NULL || bias->kind != FLEET__IV_CONST || bias->dtype != w->dtype ||
        bias->numel != cols || bias->ndim < 1 || bias->shape[bias->ndim - 1] != cols)
        return FLEET_OK;
    fleet_value bv, wt, y;
    fleet_status st;
    if ((st = fleet__imp_value(im, bias, &bv)) != FLEET_OK ||
        (bias->ndim != 1 && (st = reshape(im, bv, 1, &cols, &bv)) != FLEET_OK) ||
        (st = fleet_model_transpose(im->m, b, 0, 1, &wt)) != FLEET_OK ||
        (st = fleet_model_linear(im->m, a, wt, bv, &y)) != FLEET_OK ||
        (st = out(im, n, y)) != FLEET_OK)
        return st;
    im->done_by[reader] = y;
    *fused = true;
    return FLEET_OK;
}

/* ---- scaled dot-product attention --------------------------------------------------------- */

/* Attention as exporters spell it, from its first MatMul on:
 *   s = MatMul(q, kT); [s = Mul(s, c) | Div(s, c)]; [s = Add(s, mask)];
 *   p = Softmax(s) over the last dim; [p = Cast(p) to its own dtype];
 *   y = MatMul(p, v)
 * each value read only by the next node, c a one-element positive constant:
 * one fleet attention (the scale in the first GEMM). The mask and v may be
 * computed after the first MatMul (transformers slices the mask there), so
 * the first MatMul only finds the chain: its nodes up to the Softmax (or
 * Cast) are marked done and the last MatMul computes it. */
typedef struct attention_chain {
    int first, scale, add, softmax, cast, last; /* node indices, -1 absent */
} attention_chain;

/* The one node reading node i's output 0 (not a graph output), or -1. */
static int sole_reader(const fleet__importer *im, int i)
{
    const fleet__onnx_node *n = &im->om->graph.nodes[i];
    int reader;
    if (n->n_outputs < 1 || fleet__imp_readers(im, n->outputs[0], &reader) != 1 || reader <= i)
        return -1;
    return im->om->graph.nodes[reader].domain.n == 0 ? reader : -1;
}

static bool node_is(const fleet__importer *im, int i, const char *op, int n_inputs)
{
    const fleet__onnx_node *n = &im->om->graph.nodes[i];
    return i >= 0 && fleet__onnx_str_is(n->op_type, op) && n->n_inputs == n_inputs &&
           n->n_outputs >= 1;
}

/* The chain from the MatMul `first` whose scores have `ndim` dims of
 * dtype: true when it is there. */
static bool find_attention(const fleet__importer *im, int first, int ndim, fleet_dtype dtype,
                           attention_chain *c)
{
    const fleet__onnx_node *g = im->om->graph.nodes;
    *c = (attention_chain){first, -1, -1, -1, -1, -1};
    int r = sole_reader(im, first);
    if (r >= 0 && (node_is(im, r, "Mul", 2) || node_is(im, r, "Div", 2)))
        c->scale = r, r = sole_reader(im, r);
    if (r >= 0 && node_is(im, r, "Add", 2))
        c->add = r, r = sole_reader(im, r);
    if (r < 0 || !node_is(im, r, "Softmax", 1) || one_output(&g[r]) != FLEET_OK ||
        norm_axis(fleet__imp_attr_int(&g[r], "axis", im->opset < 13 ? 1 : -1), ndim) != ndim - 1)
        return false;
    c->softmax = r, r = sole_reader(im, r);
    if (r >= 0 && node_is(im, r, "Cast", 1)) { /* to the dtype it has: a no-op */
        int64_t to = fleet__imp_attr_int(&g[r], "to", 0);
        if (!((to == FLEET__ONNX_FLOAT && dtype == FLEET_DTYPE_F32) ||
              (to == FLEET__ONNX_FLOAT16 && dtype == FLEET_DTYPE_F16) ||
              (to == FLEET__ONNX_BFLOAT16 && dtype == FLEET_DTYPE_BF16)))
            return false;
        c->cast = r, r = sole_reader(im, r);
    }
    int before = c->cast >= 0 ? c->cast : c->softmax;
    if (r < 0 || !node_is(im, r, "MatMul", 2) ||
        !fleet__onnx_str_eq(g[r].inputs[0], g[before].outputs[0]) ||
        fleet__onnx_str_eq(g[r].inputs[1], g[before].outputs[0]))
        return false;
    c->last = r;
    return true;
}

/* The scale of chain c: 1 without a Mul or Div; 0 when its constant is not
 * (yet) a one-element positive constant. */
static float attention_scale(fleet__importer *im, const attention_chain *c)
{
    if (c->scale < 0)
        return 1.0f;
    const fleet__onnx_node *g = &im->om->graph.nodes[c->scale];
    fleet__onnx_str s = im->om->graph.nodes[c->first].outputs[0];
    if (fleet__onnx_str_eq(g->inputs[0], g->inputs[1]))
        return 0.0f;
    bool div = fleet__onnx_str_is(g->op_type, "Div");
    if (div && !fleet__onnx_str_eq(g->inputs[0], s))
        return 0.0f; /* c / s, not s / c */
    fleet__ival *k = fleet__imp_find(im, g->inputs[fleet__onnx_str_eq(g->inputs[0], s) ? 1 : 0]);
    if (k == NULL || k->kind != FLEET__IV_CONST || k->numel != 1 || k->ndim > 0 ||
        k->dtype != FLEET_DTYPE_F32)
        return 0.0f;
    double v = fleet__imp_elem_f64(k, 0);
    v = div ? 1.0 / v : v;
    return v > 0 && v < 1e30 ? (float)v : 0.0f;
}

/* At the chain's first MatMul (q and kT its operands): find the chain,
 * define the first output as a stand-in (no node but the chain reads it),
 * mark the chain's middle done, and let the last MatMul compute it. */
static fleet_status attention_begin(fleet__importer *im, const fleet__onnx_node *n, fleet_value q,
                                    fleet_value kt, bool *found)
{
    *found = false;
    const fleet__value *vq = val(im, q), *vk = val(im, kt);
    attention_chain c;
    if (vq->ndim < 2 || vq->ndim != vk->ndim || vq->dtype != vk->dtype ||
        vq->shape[vq->ndim - 1] != vk->shape[vk->ndim - 2] ||
        !find_attention(im, im->node, vq->ndim, vq->dtype, &c) || attention_scale(im, &c) <= 0.0f)
        return FLEET_OK;
    for (int d = 0; d < vq->ndim - 2; d++)
        if (vq->shape[d] != vk->shape[d])
            return FLEET_OK; /* broadcast q @ kT: left to the plain ops */
    fleet_status st = out(im, n, q);
    if (st != FLEET_OK)
        return st;
    im->n_fused++; /* this MatMul, computed by the last */
    const int middle[] = {c.scale, c.add, c.softmax, c.cast};
    for (int i = 0; i < 4; i++)
        if (middle[i] >= 0)
            im->done_by[middle[i]] = q;
    im->attention_from[c.last] = im->node + 1;
    *found = true;
    return FLEET_OK;
}

/* At the chain's last MatMul: softmax(q @ kT * scale + mask) @ v as one
 * fleet attention; spelled out when the mask would broadcast the scores
 * larger or v does not fit (as the nodes would compute it). */
static fleet_status attention_end(fleet__importer *im, const fleet__onnx_node *n, fleet_value v)
{
    const fleet__onnx_node *g = im->om->graph.nodes;
    int first = im->attention_from[im->node] - 1;
    fleet_value q, kt, k, mask = FLEET_NO_VALUE, y;
    fleet_status st;
    if ((st = in_value(im, &g[first], 0, &q, NULL)) != FLEET_OK ||
        (st = in_value(im, &g[first], 1, &kt, NULL)) != FLEET_OK)
        return st;
    attention_chain c;
    const fleet__value *vq = val(im, q);
    if (!find_attention(im, first, vq->ndim, vq->dtype, &c) || c.last != im->node)
        return fleet__error(FLEET_ERR_INTERNAL, "onnx: attention chain lost");
    float scale = attention_scale(im, &c);
    if (c.add >= 0) {
        const fleet__onnx_node *a = &g[c.add];
        int k_mask = fleet__onnx_str_eq(a->inputs[0], g[c.scale >= 0 ? c.scale : first].outputs[0]);
        if ((st = in_value(im, a, k_mask, &mask, NULL)) != FLEET_OK)
            return st;
    }
    const fleet__value *vk = val(im, kt), *vv = val(im, v), *vm = mask != FLEET_NO_VALUE
                                                                      ? val(im, mask) : NULL;
    int nd = vq->ndim;
    bool fits = vv->ndim == nd && vv->dtype == vq->dtype && vv->shape[nd - 2] == vk->shape[nd - 1];
    for (int d = 0; d < nd - 2 && fits; d++)
        fits = vv->shape[d] == vq->shape[d];
    if (vm != NULL) {
        fits = fits && vm->ndim <= nd && vm->dtype == vq->dtype;
        for (int d = 0; d < (vm != NULL ? vm->ndim : 0) && fits; d++) {
            int64_t md = vm->shape[vm->ndim - 1 - d];
            int64_t sd = d == 0 ? vk->shape[nd - 1] : d == 1 ? vq->shape[nd - 2]
                                                              : vq->shape[nd - 1 - d];
            fits = md == 1 || md == sd;
        }
    }
    if (fits) {
        st = fleet_model_transpose(im->m, kt, -2, -1, &k);
        if (st == FLEET_OK)
            st = fleet_model_attention_masked(im->m, q, k, v, mask, scale, &y);
        return st != FLEET_OK ? st : out(im, n, y);
    }
    /* the nodes' own arithmetic (the Cast a no-op) */
    fleet_value s, p;
    if ((st = fleet_model_matmul(im->m, q, kt, scale, &s)) != FLEET_OK ||
        (mask != FLEET_NO_VALUE && (st = fleet_model_add(im->m, s, mask, &s)) != FLEET_OK) ||
        (st = fleet_model_softmax(im->m, s, -1, &p)) != FLEET_OK ||
        (st = fleet_model_matmul(im->m, p, v, 1.0f, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_MatMul(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value a, b, y;
    fleet__ival *w;
    fleet_status st;
    if ((st = in_value(im, n, 0, &a, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 1, &b, &w)) != FLEET_OK)
        return st;
    if (im->attention_from[im->node] != 0)
        return attention_end(im, n, b);
    bool fused;
    if ((st = matmul_bias(im, n, a, b, w, &fused)) != FLEET_OK ||
        (!fused && (st = attention_begin(im, n, a, b, &fused)) != FLEET_OK) || fused)
        return st;
    const fleet__value *va = val(im, a), *vb = val(im, b);
    bool a1 = va->ndim == 1, b1 = vb->ndim == 1;
    int64_t s[FLEET_MAX_DIMS];
    if (a1) { /* [K] -> [1, K] */
        s[0] = 1, s[1] = va->shape[0];
        if ((st = reshape(im, a, 2, s, &a)) != FLEET_OK)
            return st;
    }
    if (b1) { /* [K] -> [K, 1] */
        s[0] = vb->shape[0], s[1] = 1;
        if ((st = reshape(im, b, 2, s, &b)) != FLEET_OK)
            return st;
    }
    if ((st = fleet_model_matmul(im->m, a, b, 1.0f, &y)) != FLEET_OK)
        return st;
    if (a1 || b1) { /* drop the dims added */
        const fleet__value *vy = val(im, y);
        int nd = 0;
        for (int d = 0; d < vy->ndim; d++)
            if (!((a1 && d == vy->ndim - 2) || (b1 && d == vy->ndim - 1)))
                s[nd++] = vy->shape[d];
        if ((st = reshape(im, y, nd, s, &y)) != FLEET_OK)
            return st;
    }
    return out(im, n, y);
}

/* Gemm: alpha * A' @ B' + beta * C; a linear (one GEMM with its bias)
 * where alpha and beta are 1 and C is a row. */
static fleet_status t_Gemm(fleet__importer *im, const fleet__onnx_node *n)
{
    float alpha = fleet__imp_attr_float(n, "alpha", 1.0f), beta = fleet__imp_attr_float(n, "beta", 1.0f);
    bool ta = fleet__imp_attr_int(n, "transA", 0) != 0, tb = fleet__imp_attr_int(n, "transB", 0) != 0;
    fleet_value a, b, c, y;
    fleet_status st;
    if ((st = in_value(im, n, 0, &a, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 1, &b, NULL)) != FLEET_OK ||
        (st = in_optional(im, n, 2, &c)) != FLEET_OK)
        return st;
    if (ta && (st = fleet_model_transpose(im->m, a, 0, 1, &a)) != FLEET_OK)
        return st;
    int64_t cols = val(im, b)->shape[tb ? 0 : 1];
    const fleet__value *vc = c != FLEET_NO_VALUE ? val(im, c) : NULL;
    bool row = vc == NULL || (vc->ndim == 1 && vc->shape[0] == cols) ||
               (vc->ndim == 2 && vc->shape[0] == 1 && vc->shape[1] == cols);
    if (alpha == 1.0f && beta == 1.0f && row) {
        fleet_value bias = c;
        if (c != FLEET_NO_VALUE && val(im, c)->ndim == 2 &&
            (st = reshape(im, c, 1, &val(im, c)->shape[1], &bias)) != FLEET_OK)
            return st;
        if (!tb && (st = fleet_model_transpose(im->m, b, 0, 1, &b)) != FLEET_OK)
            return st;
        if ((st = fleet_model_linear(im->m, a, b, bias, &y)) != FLEET_OK)
            return st;
        return out(im, n, y);
    }
    if (tb && (st = fleet_model_transpose(im->m, b, 0, 1, &b)) != FLEET_OK)
        return st;
    if ((st = fleet_model_matmul(im->m, a, b, alpha, &y)) != FLEET_OK)
        return st;
    if (c != FLEET_NO_VALUE && beta != 0.0f) {
        fleet_value k;
        if (beta != 1.0f && ((st = scalar_const(im, val(im, c)->dtype, beta, &k)) != FLEET_OK ||
                             (st = fleet_model_mul(im->m, c, k, &c)) != FLEET_OK))
            return st;
        if ((st = fleet_model_add(im->m, y, c, &y)) != FLEET_OK)
            return st;
    }
    return out(im, n, y);
}

/* ---- along dimensions ------------------------------------------------------------------- */

/* Softmax and LogSoftmax: before opset 13 over the dims from axis on
 * (flattened), from 13 along axis. */
static fleet_status softmax(fleet__importer *im, const fleet__onnx_node *n, bool log)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int nd = vx->ndim;
    int64_t shape[FLEET_MAX_DIMS];
    memcpy(shape, vx->shape, sizeof shape);
    int axis = norm_axis(fleet__imp_attr_int(n, "axis", im->opset < 13 ? 1 : -1), nd);
    if (axis < 0 || axis >= (nd > 0 ? nd : 1))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: softmax axis out of range");
    bool flatten = im->opset < 13 && axis != nd - 1;
    if (flatten) {
        int64_t two[2];
        if ((st = dims_product(n, shape, 0, axis, &two[0])) != FLEET_OK ||
            (st = dims_product(n, shape, axis, nd, &two[1])) != FLEET_OK ||
            (st = reshape(im, x, 2, two, &x)) != FLEET_OK)
            return st;
    }
    int dim = flatten ? 1 : axis;
    st = log ? fleet_model_log_softmax(im->m, x, dim, &y) : fleet_model_softmax(im->m, x, dim, &y);
    if (st == FLEET_OK && flatten)
        st = reshape(im, y, nd, shape, &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

static fleet_status t_Softmax(fleet__importer *im, const fleet__onnx_node *n)
{
    return softmax(im, n, false);
}

static fleet_status t_LogSoftmax(fleet__importer *im, const fleet__onnx_node *n)
{
    return softmax(im, n, true);
}

/* LayerNormalization's optional outputs, Mean and InvStdDev of the rows
 * of x (flattened to [..., row]), shaped [d0 .. d(axis-1), 1, ..., 1]. */
static fleet_status layer_norm_stats(fleet__importer *im, const fleet__onnx_node *n, fleet_value x,
                                     int axis, int nd, const int64_t *shape, float eps)
{
    int64_t stat[FLEET_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        stat[d] = d < axis ? shape[d] : 1;
    int last = val(im, x)->ndim - 1;
    fleet_value mean, centred, sq, var, k, inv;
    fleet_status st;
    if ((st = fleet_model_mean(im->m, x, last, 1, &mean)) != FLEET_OK ||
        (st = fleet_model_sub(im->m, x, mean, &centred)) != FLEET_OK ||
        (st = fleet_model_mul(im->m, centred, centred, &sq)) != FLEET_OK ||
        (st = fleet_model_mean(im->m, sq, last, 1, &var)) != FLEET_OK ||
        (st = scalar_const(im, val(im, x)->dtype, eps, &k)) != FLEET_OK ||
        (st = fleet_model_add(im->m, var, k, &var)) != FLEET_OK ||
        (st = fleet_model_sqrt(im->m, var, &inv)) != FLEET_OK ||
        (st = fleet_model_reciprocal(im->m, inv, &inv)) != FLEET_OK ||
        (st = reshape(im, mean, nd, stat, &mean)) != FLEET_OK ||
        (st = reshape(im, inv, nd, stat, &inv)) != FLEET_OK ||
        (st = fleet__imp_out_graph(im, n, 1, mean)) != FLEET_OK)
        return st;
    return fleet__imp_out_graph(im, n, 2, inv);
}

/* LayerNormalization over the dims from axis on (flattened into one). */
static fleet_status t_LayerNormalization(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, g, b, y;
    fleet_status st;
    if ((st = in_value(im, n, 0, &x, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 1, &g, NULL)) != FLEET_OK ||
        (st = in_optional(im, n, 2, &b)) != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int nd = vx->ndim;
    int64_t shape[FLEET_MAX_DIMS];
    memcpy(shape, vx->shape, sizeof shape);
    int axis = norm_axis(fleet__imp_attr_int(n, "axis", -1), nd);
    float eps = fleet__imp_attr_float(n, "epsilon", 1e-5f);
    if (axis < 0 || axis >= nd)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: LayerNormalization axis out of range");
    if (axis != nd - 1) {
        int64_t flat[FLEET_MAX_DIMS], row;
        if ((st = dims_product(n, shape, axis, nd, &row)) != FLEET_OK)
            return st;
        memcpy(flat, shape, sizeof(int64_t) * (size_t)axis);
        flat[axis] = row;
        if ((st = reshape(im, x, axis + 1, flat, &x)) != FLEET_OK ||
            (st = reshape(im, g, 1, &row, &g)) != FLEET_OK ||
            (b != FLEET_NO_VALUE && (st = reshape(im, b, 1, &row, &b)) != FLEET_OK))
            return st;
    } else {
        /* scale and bias may be [1, ..., D]: the builder takes [D] */
        int64_t d = shape[nd - 1];
        if ((val(im, g)->ndim != 1 && (st = reshape(im, g, 1, &d, &g)) != FLEET_OK) ||
            (b != FLEET_NO_VALUE && val(im, b)->ndim != 1 &&
             (st = reshape(im, b, 1, &d, &b)) != FLEET_OK))
            return st;
    }
    if ((st = fleet_model_layer_norm(im->m, x, g, b, eps, &y)) != FLEET_OK ||
        (axis != nd - 1 && (st = reshape(im, y, nd, shape, &y)) != FLEET_OK) ||
        (st = out(im, n, y)) != FLEET_OK)
        return st;
    bool stats = (n->n_outputs > 1 && n->outputs[1].n) || (n->n_outputs > 2 && n->outputs[2].n);
    return stats ? layer_norm_stats(im, n, x, axis, nd, shape, eps) : FLEET_OK;
}

typedef fleet_status (*reduce_fn)(fleet_model *, fleet_value, int, int, fleet_value *);

/* ReduceMean/Sum/Max: over axes (an attribute, or input 1 from opset 13
 * for Sum and 18 for the others), one dimension at a time. */
static fleet_status reduce(fleet__importer *im, const fleet__onnx_node *n, reduce_fn fn,
                           int64_t axes_input_opset)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int nd = vx->ndim;
    int64_t shape[FLEET_MAX_DIMS];
    memcpy(shape, vx->shape, sizeof shape);
    int64_t axes[FLEET_MAX_DIMS];
    int na = 0;
    if (im->opset < axes_input_opset) {
        const int64_t *a;
        na = fleet__imp_attr_ints(n, "axes", &a);
        if (na > FLEET_MAX_DIMS)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: more than 8 axes");
        memcpy(axes, a, sizeof(int64_t) * (size_t)na);
    } else {
        fleet__ival *e;
        if ((st = fleet__imp_input(im, n, 1, &e)) != FLEET_OK ||
            (e != NULL &&
             (st = fleet__imp_ints(n, e, axes, NULL, FLEET_MAX_DIMS, &na)) != FLEET_OK))
            return st;
    }
    bool keep = fleet__imp_attr_int(n, "keepdims", 1) != 0;
    if (na == 0 && fleet__imp_attr_int(n, "noop_with_empty_axes", 0) != 0)
        return t_Identity(im, n);
    bool reduced[FLEET_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int d = norm_axis(axes[i], nd);
        if (d < 0 || d >= nd)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: reduce axis out of range");
        reduced[d] = true;
    }
    if (na == 0)
        for (int d = 0; d < nd; d++)
            reduced[d] = true;
    y = x;
    for (int d = nd - 1; d >= 0; d--)
        if (reduced[d] && (st = fn(im->m, y, d, 1, &y)) != FLEET_OK)
            return st;
    if (!keep) {
        int k = 0;
        for (int d = 0; d < nd; d++)
            if (!reduced[d])
                shape[k++] = shape[d];
        if ((st = reshape(im, y, k, shape, &y)) != FLEET_OK)
            return st;
    }
    return out(im, n, y);
}

/* Whether a ReduceMean node reduces only the last dim of an ndim input,
 * keeping it (axes an attribute before opset 18, an input from 18). */
static bool mean_of_last(fleet__importer *im, const fleet__onnx_node *r, int ndim)
{
    int64_t axes[FLEET_MAX_DIMS];
    int na = 0;
    if (fleet__imp_attr_int(r, "keepdims", 1) == 0)
        return false;
    if (im->opset < 18) {
        const int64_t *a;
        if ((na = fleet__imp_attr_ints(r, "axes", &a)) != 1)
            return false;
        axes[0] = a[0];
    } else {
        fleet__ival *e = r->n_inputs > 1 ? fleet__imp_find(im, r->inputs[1]) : NULL;
        if (e == NULL || e->kind != FLEET__IV_CONST || e->numel != 1)
            return false;
        axes[0] = (int64_t)fleet__imp_elem_f64(e, 0);
        na = 1;
    }
    return na == 1 && norm_axis(axes[0], ndim) == ndim - 1;
}

/* The node after `from` that reads `name` and has op type `op`, or -1. */
static int reader_after(const fleet__importer *im, int from, fleet__onnx_str name, const char *op)
{
    const fleet__onnx_graph *g = &im->om->graph;
    for (int i = from + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (fleet__onnx_str_eq(g->nodes[i].inputs[k], name))
                return fleet__onnx_str_is(g->nodes[i].op_type, op) ? i : -1;
    return -1;
}

/* A [D] f32 constant operand of r other than `name` (NULL if not one). */
static fleet__ival *row_const(fleet__importer *im, const fleet__onnx_node *r, fleet__onnx_str name,
                              int64_t d)
{
    if (r->n_inputs != 2)
        return NULL;
    fleet__ival *c = fleet__imp_find(im, r->inputs[fleet__onnx_str_eq(r->inputs[0], name)]);
    return c != NULL && c->kind == FLEET__IV_CONST && c->dtype == FLEET_DTYPE_F32 &&
                   c->ndim == 1 && c->shape[0] == d
               ? c
               : NULL;
}

/* Layer norm as exports before opset 17 spell it:
 *   m = ReduceMean(x); d = Sub(x, m); v = ReduceMean(Pow(d, 2));
 *   y = Add(Mul(Div(d, Sqrt(Add(v, eps))), gamma), beta)
 * over the last dim, each value read only inside the chain (d by Pow and
 * Div): one layer_norm. *fused false when the chain is not there. */
static fleet_status layer_norm_chain(fleet__importer *im, const fleet__onnx_node *n, bool *fused)
{
    *fused = false;
    if (n->n_inputs < 1 || n->n_outputs < 1)
        return FLEET_OK;
    const fleet__onnx_node *g = im->om->graph.nodes;
    fleet__ival *xi = fleet__imp_find(im, n->inputs[0]);
    if (xi == NULL || xi->kind != FLEET__IV_GRAPH || xi->ndim < 1 || xi->shape[xi->ndim - 1] < 1 ||
        !mean_of_last(im, n, xi->ndim))
        return FLEET_OK;
    int64_t dim = xi->shape[xi->ndim - 1];
    fleet__onnx_str x = n->inputs[0];
    int sub = only_reader(im, n, "Sub"), last;
    if (sub < 0 || !fleet__onnx_str_eq(g[sub].inputs[0], x) ||
        fleet__imp_readers(im, g[sub].outputs[0], &last) != 2)
        return FLEET_OK;
    fleet__onnx_str d = g[sub].outputs[0];
    int pw = reader_after(im, sub, d, "Pow");
    if (pw < 0 || !operand_is(im, &g[pw], d, 2.0))
        return FLEET_OK;
    int mean2 = only_reader(im, &g[pw], "ReduceMean");
    if (mean2 < 0 || !mean_of_last(im, &g[mean2], xi->ndim))
        return FLEET_OK;
    int add = only_reader(im, &g[mean2], "Add");
    if (add < 0 || g[add].n_inputs != 2)
        return FLEET_OK;
    fleet__ival *eps = fleet__imp_find(
        im, g[add].inputs[fleet__onnx_str_eq(g[add].inputs[0], g[mean2].outputs[0])]);
    if (eps == NULL || eps->kind != FLEET__IV_CONST || eps->numel != 1)
        return FLEET_OK;
    int sq = only_reader(im, &g[add], "Sqrt");
    int div = sq >= 0 ? only_reader(im, &g[sq], "Div") : -1;
    if (div < 0 || div != last || !fleet__onnx_str_eq(g[div].inputs[0], d))
        return FLEET_OK;
    int mul = only_reader(im, &g[div], "Mul");
    int bias = mul >= 0 ? only_reader(im, &g[mul], "Add") : -1;
    fleet__ival *gamma = mul >= 0 ? row_const(im, &g[mul], g[div].outputs[0], dim) : NULL;
    fleet__ival *beta = bias >= 0 ? row_const(im, &g[bias], g[mul].outputs[0], dim) : NULL;
    if (gamma == NULL || beta == NULL)
        return FLEET_OK;
    fleet_value xv, gv, bv, y;
    fleet_status st;
    if ((st = fleet__imp_value(im, xi, &xv)) != FLEET_OK ||
        (st = fleet__imp_value(im, gamma, &gv)) != FLEET_OK ||
        (st = fleet__imp_value(im, beta, &bv)) != FLEET_OK ||
        (st = fleet_model_layer_norm(im->m, xv, gv, bv, (float)fleet__imp_elem_f64(eps, 0), &y)) !=
            FLEET_OK ||
        (st = out(im, n, y)) != FLEET_OK)
        return st;
    const int chain[] = {sub, pw, mean2, add, sq, div, mul, bias};
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++)
        im->done_by[chain[i]] = y; /* read only inside the chain, or its result */
    *fused = true;
    return FLEET_OK;
}

static fleet_status t_ReduceMean(fleet__importer *im, const fleet__onnx_node *n)
{
    bool fused;
    fleet_status st = layer_norm_chain(im, n, &fused);
    return st != FLEET_OK || fused ? st : reduce(im, n, fleet_model_mean, 18);
}

static fleet_status t_ReduceSum(fleet__importer *im, const fleet__onnx_node *n)
{
    return reduce(im, n, fleet_model_sum, 13);
}

static fleet_status t_ReduceMax(fleet__importer *im, const fleet__onnx_node *n)
{
    return reduce(im, n, fleet_model_max, 18);
}

/* GlobalAveragePool: the mean over every spatial dim, kept. */
static fleet_status t_GlobalAveragePool(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    int nd = st == FLEET_OK ? val(im, x)->ndim : 0;
    for (int d = nd - 1; st == FLEET_OK && d >= 2; d--)
        st = fleet_model_mean(im->m, x, d, 1, &x);
    return st != FLEET_OK ? st : out(im, n, x);
}

/* ---- shapes ------------------------------------------------------------------------------ */

fleet_status fleet__imp_squeeze_shape(const fleet__onnx_node *n, int ndim, const int64_t *in,
                                      const int64_t *axes, int n_axes, bool unsqueeze,
                                      int *out_ndim, int64_t *out)
{
    bool mark[FLEET_MAX_DIMS + FLEET_MAX_DIMS] = {false};
    int rank = unsqueeze ? ndim + n_axes : ndim;
    if (rank > FLEET_MAX_DIMS)
        return fleet__imp_unsupported(n, "a result of more than 8 dimensions");
    for (int i = 0; i < n_axes; i++) {
        int d = norm_axis(axes[i], rank);
        if (d < 0 || d >= rank || mark[d])
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s': axis %lld out of "
                                "range or repeated", (int)n->name.n, (const char *)n->name.p,
                                (long long)axes[i]);
        if (!unsqueeze && in[d] != 1)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s' squeezes a dim of "
                                "size %lld", (int)n->name.n, (const char *)n->name.p,
                                (long long)in[d]);
        mark[d] = true;
    }
    int k = 0, j = 0;
    for (int d = 0; d < rank; d++) {
        if (unsqueeze)
            out[k++] = mark[d] ? 1 : in[j++];
        else if (!(mark[d] || (n_axes == 0 && in[d] == 1)))
            out[k++] = in[d];
    }
    *out_ndim = k;
    return FLEET_OK;
}

static fleet_status squeeze(fleet__importer *im, const fleet__onnx_node *n, bool unsqueeze)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    int64_t axes[FLEET_MAX_DIMS], shape[FLEET_MAX_DIMS];
    int na = 0, nd;
    if (im->opset < 13) {
        const int64_t *a;
        na = fleet__imp_attr_ints(n, "axes", &a);
        if (na > FLEET_MAX_DIMS)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: more than 8 axes");
        memcpy(axes, a, sizeof(int64_t) * (size_t)na);
    } else {
        fleet__ival *e;
        if ((st = fleet__imp_input(im, n, 1, &e)) != FLEET_OK ||
            (e != NULL &&
             (st = fleet__imp_ints(n, e, axes, NULL, FLEET_MAX_DIMS, &na)) != FLEET_OK))
            return st;
    }
    const fleet__value *vx = val(im, x);
    if ((st = fleet__imp_squeeze_shape(n, vx->ndim, vx->shape, axes, na, unsqueeze, &nd,
                                       shape)) != FLEET_OK ||
        (st = reshape(im, x, nd, shape, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_Squeeze(fleet__importer *im, const fleet__onnx_node *n)
{
    return squeeze(im, n, false);
}

static fleet_status t_Unsqueeze(fleet__importer *im, const fleet__onnx_node *n)
{
    return squeeze(im, n, true);
}

/* Reshape to a target known at load: 0 copies the input's dim (unless
 * allowzero), -1 is inferred, the batch size stays the batch. */
static fleet_status t_Reshape(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y;
    fleet__ival *e;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK || (st = fleet__imp_input(im, n, 1, &e)) != FLEET_OK)
        return st;
    int64_t t[FLEET_MAX_DIMS];
    uint8_t sym[FLEET_MAX_DIMS];
    int nt;
    if ((st = fleet__imp_ints(n, e, t, sym, FLEET_MAX_DIMS, &nt)) != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    bool allowzero = fleet__imp_attr_int(n, "allowzero", 0) != 0;
    int infer = -1, tb = 0, xb = 0;
    int64_t known = 1, xp = 1;
    for (int d = 0; d < vx->ndim; d++) { /* -k: the factor k and one batch */
        xb += vx->shape[d] < 0;
        if (__builtin_mul_overflow(xp, vx->shape[d] < 0 ? -vx->shape[d] : vx->shape[d], &xp))
            return too_large(n);
    }
    for (int d = 0; d < nt; d++) {
        if (sym[d]) {
            t[d] = B;
        } else if (t[d] == 0 && !allowzero) {
            if (d >= vx->ndim)
                return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Reshape copies dim %d of a "
                                    "%d-D input", d, vx->ndim);
            t[d] = vx->shape[d];
        } else if (t[d] == -1) {
            if (infer >= 0)
                return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Reshape with two -1");
            infer = d;
            continue;
        } else if (t[d] < 0) {
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Reshape to dim %lld",
                                (long long)t[d]);
        }
        tb += t[d] < 0;
        if (__builtin_mul_overflow(known, t[d] < 0 ? -t[d] : t[d], &known))
            return too_large(n);
    }
    if (infer >= 0) {
        if (known == 0 || xp % known != 0 || (tb != xb && tb + 1 != xb))
            return fleet__imp_unsupported(n, "a -1 fleet cannot infer over the batch");
        /* the batch not placed yet goes into the -1, as k times the batch */
        t[infer] = tb == xb ? xp / known : -(xp / known);
    }
    if ((st = reshape(im, x, nt, t, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_Flatten(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int axis = norm_axis(fleet__imp_attr_int(n, "axis", 1), vx->ndim);
    if (axis < 0 || axis > vx->ndim)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Flatten axis out of range");
    int64_t two[2];
    if ((st = dims_product(n, vx->shape, 0, axis, &two[0])) != FLEET_OK ||
        (st = dims_product(n, vx->shape, axis, vx->ndim, &two[1])) != FLEET_OK ||
        (st = reshape(im, x, 2, two, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_Transpose(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    int nd = val(im, x)->ndim, perm[FLEET_MAX_DIMS];
    const int64_t *p;
    int np = fleet__imp_attr_ints(n, "perm", &p);
    if (np != 0 && np != nd)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Transpose perm of length %d for a "
                            "%d-D input", np, nd);
    for (int d = 0; d < nd; d++)
        perm[d] = np ? (int)p[d] : nd - 1 - d;
    if ((st = fleet_model_permute(im->m, x, perm, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_Concat(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value parts[64], y;
    int k = 0;
    if (n->n_inputs > 64)
        return fleet__imp_unsupported(n, "more than 64 inputs");
    for (int i = 0; i < n->n_inputs; i++) {
        fleet__ival *e;
        fleet_status st = fleet__imp_input(im, n, i, &e);
        if (st != FLEET_OK)
            return st;
        if (e == NULL)
            continue;
        if ((st = fleet__imp_value(im, e, &parts[k++])) != FLEET_OK)
            return st;
    }
    fleet_status st = fleet_model_concat(im->m, parts, k, (int)fleet__imp_attr_int(n, "axis", 0),
                                         &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

/* Split along axis: sizes from the split attribute (input from opset 13),
 * else num_outputs (opset 18) or the outputs' count, equal but the last. */
static fleet_status t_Split(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int axis = norm_axis(fleet__imp_attr_int(n, "axis", 0), vx->ndim);
    if (axis < 0 || axis >= vx->ndim)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Split axis out of range");
    int64_t size = vx->shape[axis], sizes[64];
    if (size == B)
        return fleet__imp_unsupported(n, "a split along the batch");
    int ns = 0, no = n->n_outputs;
    if (no > 64)
        return fleet__imp_unsupported(n, "more than 64 outputs");
    if (im->opset < 13) {
        const int64_t *a;
        ns = fleet__imp_attr_ints(n, "split", &a);
        if (ns > 64)
            return fleet__imp_unsupported(n, "more than 64 parts");
        memcpy(sizes, a, sizeof(int64_t) * (size_t)ns);
    } else {
        fleet__ival *e;
        if ((st = fleet__imp_input(im, n, 1, &e)) != FLEET_OK ||
            (e != NULL && (st = fleet__imp_ints(n, e, sizes, NULL, 64, &ns)) != FLEET_OK))
            return st;
    }
    if (ns == 0) {
        int parts = (int)fleet__imp_attr_int(n, "num_outputs", no);
        if (parts < 1 || parts != no)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Split into %d parts, %d outputs",
                                parts, no);
        int64_t each = (size + parts - 1) / parts;
        for (int i = 0; i < parts; i++) {
            int64_t left = size - (int64_t)i * each;
            sizes[i] = left < each ? (left > 0 ? left : 0) : each;
        }
        ns = parts;
    }
    if (ns != no)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Split sizes for %d parts, %d outputs",
                            ns, no);
    int64_t at = 0;
    for (int i = 0; i < ns; i++) {
        if (sizes[i] < 0 || at + sizes[i] > size)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Split sizes exceed the dim");
        fleet_value y;
        if ((st = fleet_model_slice(im->m, x, axis, at, at + sizes[i], 1, &y)) != FLEET_OK ||
            (st = fleet__imp_out_graph(im, n, i, y)) != FLEET_OK)
            return st;
        at += sizes[i];
    }
    return FLEET_OK;
}

/* Slice of a graph value: starts/ends/axes/steps known at load (attributes
 * before opset 10), one slice per axis; steps > 0. */
static fleet_status t_Slice(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    int64_t s[FLEET_MAX_DIMS], e[FLEET_MAX_DIMS], ax[FLEET_MAX_DIMS], sp[FLEET_MAX_DIMS];
    int ns = 0, ne = 0, na = 0, nsp = 0;
    if (im->opset < 10) {
        const int64_t *a;
        if ((ns = fleet__imp_attr_ints(n, "starts", &a)) > FLEET_MAX_DIMS)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: more than 8 slice axes");
        memcpy(s, a, sizeof(int64_t) * (size_t)ns);
        if ((ne = fleet__imp_attr_ints(n, "ends", &a)) != ns)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: starts and ends differ in length");
        memcpy(e, a, sizeof(int64_t) * (size_t)ne);
        if ((na = fleet__imp_attr_ints(n, "axes", &a)) > FLEET_MAX_DIMS)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: more than 8 slice axes");
        memcpy(ax, a, sizeof(int64_t) * (size_t)na);
    } else {
        fleet__ival *iv[5] = {0};
        for (int k = 1; k < 5; k++)
            if ((st = fleet__imp_input(im, n, k, &iv[k])) != FLEET_OK)
                return st;
        if ((st = fleet__imp_ints(n, iv[1], s, NULL, FLEET_MAX_DIMS, &ns)) != FLEET_OK ||
            (st = fleet__imp_ints(n, iv[2], e, NULL, FLEET_MAX_DIMS, &ne)) != FLEET_OK ||
            (iv[3] && (st = fleet__imp_ints(n, iv[3], ax, NULL, FLEET_MAX_DIMS, &na)) != FLEET_OK) ||
            (iv[4] && (st = fleet__imp_ints(n, iv[4], sp, NULL, FLEET_MAX_DIMS, &nsp)) != FLEET_OK))
            return st;
    }
    if (ne != ns || (na != 0 && na != ns) || (nsp != 0 && nsp != ns))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Slice inputs of different lengths");
    for (int i = 0; i < ns; i++) {
        int64_t step = nsp ? sp[i] : 1;
        if (step < 0)
            return fleet__imp_unsupported(n, "a negative step");
        if ((st = fleet_model_slice(im->m, x, (int)(na ? ax[i] : i), s[i], e[i], step, &x)) !=
            FLEET_OK)
            return st;
    }
    return out(im, n, x);
}

/* Input k, known at load, as a shape: its elements of the batch size
 * become FLEET_DIM_BATCH. */
static fleet_status shape_input(fleet__importer *im, const fleet__onnx_node *n, int k,
                                int64_t *to, int *nt)
{
    fleet__ival *e;
    uint8_t sym[FLEET_MAX_DIMS];
    fleet_status st = fleet__imp_input(im, n, k, &e);
    if (st != FLEET_OK || (st = fleet__imp_ints(n, e, to, sym, FLEET_MAX_DIMS, nt)) != FLEET_OK)
        return st;
    for (int d = 0; d < *nt; d++)
        to[d] = sym[d] ? B : to[d];
    return FLEET_OK;
}

static fleet_status t_Expand(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y;
    int64_t to[FLEET_MAX_DIMS];
    int nt;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK || (st = shape_input(im, n, 1, to, &nt)) != FLEET_OK)
        return st;
    if ((st = fleet_model_expand(im->m, x, nt, to, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* ConstantOfShape of a shape holding the batch: a scalar expanded. */
static fleet_status t_ConstantOfShape(fleet__importer *im, const fleet__onnx_node *n)
{
    int64_t to[FLEET_MAX_DIMS];
    int nt;
    fleet_status st = shape_input(im, n, 0, to, &nt);
    if (st != FLEET_OK)
        return st;
    const fleet__onnx_attr *a = fleet__imp_attr(n, "value");
    fleet_value k, y;
    unsigned char v[8] = {0};
    fleet_dtype dt = FLEET_DTYPE_F32;
    if (a != NULL && a->type == FLEET__ONNX_ATTR_TENSOR && a->t != NULL) {
        if (a->t->data_type == FLEET__ONNX_INT64)
            dt = FLEET_DTYPE_I64;
        else if (a->t->data_type != FLEET__ONNX_FLOAT)
            return fleet__imp_unsupported(n, "a value of ONNX dtype %d", (int)a->t->data_type);
        if ((st = fleet__onnx_tensor_read(im->om, a->t, v, fleet_dtype_size(dt))) != FLEET_OK)
            return st;
    }
    if ((st = fleet_model_constant(im->m, dt, 0, NULL, v, &k)) != FLEET_OK ||
        (st = fleet_model_expand(im->m, k, nt, to, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* Range that fold.c could not compute: its limit the batch size B, from 0
 * in steps of 1 (the batch index of a mask builder's arithmetic), which a
 * graph op makes at each run. Any other start or delta would make a length
 * that is no multiple of the batch. */
static fleet_status t_Range(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet__ival *iv[3];
    int64_t v[3];
    uint8_t sym[3];
    fleet_status st;
    for (int k = 0; k < 3; k++) {
        int cnt;
        if ((st = fleet__imp_input(im, n, k, &iv[k])) != FLEET_OK)
            return st;
        if (iv[k] == NULL || (iv[k]->dtype != FLEET_DTYPE_I64 && iv[k]->dtype != FLEET_DTYPE_I32))
            return fleet__imp_unsupported(n, "a Range over the batch size in floats");
        if ((st = fleet__imp_ints(n, iv[k], &v[k], &sym[k], 1, &cnt)) != FLEET_OK)
            return st;
        if (cnt != 1)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s': a Range operand of "
                                "%d elements", (int)n->name.n, (const char *)n->name.p, cnt);
    }
    fleet_dtype dt = iv[0]->dtype;
    if (!sym[1] || sym[0] || sym[2] || v[0] != 0 || v[2] != 1 || iv[1]->dtype != dt ||
        iv[2]->dtype != dt)
        return fleet__imp_unsupported(n, "a Range over the batch size other than 0, 1, .., B-1 "
                                      "in integers");
    fleet_value y;
    if ((st = fleet_model_range(im->m, dt, 0.0, 1.0, FLEET_DIM_BATCH, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* Ops computed only at load (their inputs must be constants). */
static fleet_status t_load_only(fleet__importer *im, const fleet__onnx_node *n)
{
    (void)im;
    return fleet__imp_unsupported(n, "inputs computed by the graph (fleet computes %.*s at load "
                                  "only)", (int)n->op_type.n, (const char *)n->op_type.p);
}

static fleet_status t_CumSum(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y;
    fleet__ival *axis;
    int64_t a;
    int cnt;
    fleet_status st;
    if (fleet__imp_attr_int(n, "reverse", 0) != 0)
        return fleet__imp_unsupported(n, "reverse = 1");
    if ((st = in_value(im, n, 0, &x, NULL)) != FLEET_OK ||
        (st = fleet__imp_input(im, n, 1, &axis)) != FLEET_OK ||
        (st = fleet__imp_ints(n, axis, &a, NULL, 1, &cnt)) != FLEET_OK)
        return st;
    if (cnt != 1 || a < INT32_MIN || a > INT32_MAX)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s': CumSum's axis is not "
                            "one number", (int)n->name.n, (const char *)n->name.p);
    if ((st = fleet_model_cumsum(im->m, x, (int)a, (int)fleet__imp_attr_int(n, "exclusive", 0),
                                 &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_GatherND(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, idx, y;
    fleet_status st;
    if (fleet__imp_attr_int(n, "batch_dims", 0) != 0)
        return fleet__imp_unsupported(n, "batch_dims other than 0");
    if ((st = in_value(im, n, 0, &x, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 1, &idx, NULL)) != FLEET_OK ||
        (st = fleet_model_gather_nd(im->m, x, idx, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

static fleet_status t_Gather(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, idx, y;
    fleet_status st;
    if ((st = in_value(im, n, 0, &x, NULL)) != FLEET_OK ||
        (st = in_value(im, n, 1, &idx, NULL)) != FLEET_OK ||
        (st = fleet_model_gather(im->m, x, idx, (int)fleet__imp_attr_int(n, "axis", 0), &y)) !=
            FLEET_OK)
        return st;
    return out(im, n, y);
}

/* Trilu over the last two dims (known sizes): x where the mask keeps it, else 0. */
static fleet_status t_Trilu(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, y, mask, zero;
    fleet__ival *ke;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK || (st = fleet__imp_input(im, n, 1, &ke)) != FLEET_OK)
        return st;
    int64_t k = 0;
    int nk = 0;
    if (ke != NULL && (st = fleet__imp_ints(n, ke, &k, NULL, 1, &nk)) != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    if (vx->ndim < 2)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Trilu of a %d-D input", vx->ndim);
    int64_t rows = vx->shape[vx->ndim - 2], cols = vx->shape[vx->ndim - 1];
    if (rows < 0 || cols < 0)
        return fleet__imp_unsupported(n, "a matrix dim that is the batch");
    if (rows > (1 << 24) || cols > (1 << 24) || rows * cols > (1 << 26))
        return fleet__imp_unsupported(n, "a mask of more than 2^26 elements");
    bool upper = fleet__imp_attr_int(n, "upper", 1) != 0;
    fleet_dtype dt = vx->dtype;
    uint8_t *m = fleet__malloc((size_t)(rows * cols > 0 ? rows * cols : 1));
    if (m == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "onnx: no host memory for a Trilu mask");
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            m[i * cols + j] = upper ? j - i >= k : j - i <= k;
    int64_t ms[2] = {rows, cols};
    st = fleet_model_constant(im->m, FLEET_DTYPE_BOOL, 2, ms, m, &mask);
    free(m);
    unsigned char zbuf[8] = {0};
    if (st != FLEET_OK || (st = fleet_model_constant(im->m, dt, 0, NULL, zbuf, &zero)) != FLEET_OK ||
        (st = fleet_model_where(im->m, mask, x, zero, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* ---- convolution and pooling ------------------------------------------------------------ */

/* A window's pads (begin, end per spatial dim) from pads or auto_pad. */
static fleet_status window_pads(const fleet__onnx_node *n, int sp, const int64_t *in_size,
                                const int64_t *kernel, const int64_t *stride,
                                const int64_t *dil, int64_t *pb, int64_t *pe)
{
    const int64_t *pads;
    int np = fleet__imp_attr_ints(n, "pads", &pads);
    bool valid = fleet__imp_attr_str_is(n, "auto_pad", "VALID", false);
    bool upper = fleet__imp_attr_str_is(n, "auto_pad", "SAME_UPPER", false);
    bool lower = fleet__imp_attr_str_is(n, "auto_pad", "SAME_LOWER", false);
    if (!valid && !upper && !lower && !fleet__imp_attr_str_is(n, "auto_pad", "NOTSET", true))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: auto_pad of an unknown kind");
    if (np != 0 && np != 2 * sp)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: %d pads for %d spatial dims", np, sp);
    for (int k = 0; k < sp; k++) {
        if (stride[k] < 1 || stride[k] > (1 << 20) || dil[k] < 1 || dil[k] > (1 << 20) ||
            kernel[k] < 1 || kernel[k] > (1 << 20) || in_size[k] > ((int64_t)1 << 40))
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: node '%.*s': a window's kernel, "
                                "stride or dilation is outside 1..2^20", (int)n->name.n,
                                (const char *)n->name.p);
        pb[k] = np ? pads[k] : 0;
        pe[k] = np ? pads[sp + k] : 0;
        if (upper || lower) {
            if (in_size[k] < 0)
                return fleet__imp_unsupported(n, "SAME padding over the batch");
            int64_t o = (in_size[k] + stride[k] - 1) / stride[k];
            int64_t total = (o - 1) * stride[k] + dil[k] * (kernel[k] - 1) + 1 - in_size[k];
            total = total > 0 ? total : 0;
            pb[k] = upper ? total / 2 : total - total / 2;
            pe[k] = total - pb[k];
        } else if (valid) {
            pb[k] = pe[k] = 0;
        }
    }
    return FLEET_OK;
}

/* strides and dilations (1 each when absent), kernel from the attribute or w. */
static fleet_status window_attrs(const fleet__onnx_node *n, int sp, const char *dil_name,
                                 int64_t *stride, int64_t *dil, int64_t *kernel)
{
    const int64_t *a;
    int ns = fleet__imp_attr_ints(n, "strides", &a);
    for (int k = 0; k < sp; k++)
        stride[k] = ns ? a[k % ns] : 1;
    if (ns != 0 && ns != sp)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: %d strides for %d dims", ns, sp);
    int nd = dil_name != NULL ? fleet__imp_attr_ints(n, dil_name, &a) : 0;
    if (nd != 0 && nd != sp)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: %d dilations for %d dims", nd, sp);
    for (int k = 0; k < sp; k++)
        dil[k] = nd ? a[k] : 1;
    int nk = fleet__imp_attr_ints(n, "kernel_shape", &a);
    if (nk != 0 && nk != sp)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: kernel_shape of %d dims, %d spatial",
                            nk, sp);
    for (int k = 0; nk && k < sp; k++)
        kernel[k] = a[k];
    return FLEET_OK;
}

/* The inference BatchNormalization n as x * s + t per channel, s = scale /
 * sqrt(var + eps) and t = bias - mean * s, when its four parameters are f32
 * [c] constants: *st (2c floats: s, then t; the caller frees it), else NULL. */
static fleet_status batch_norm_consts(fleet__importer *im, const fleet__onnx_node *n, int64_t c,
                                      float **st_out)
{
    *st_out = NULL;
    fleet__ival *p[5];
    for (int k = 1; k < 5; k++) {
        fleet_status st = fleet__imp_input(im, n, k, &p[k]);
        if (st != FLEET_OK)
            return st;
        if (p[k] == NULL || p[k]->kind != FLEET__IV_CONST || p[k]->dtype != FLEET_DTYPE_F32 ||
            p[k]->ndim != 1 || p[k]->numel != c)
            return FLEET_OK;
    }
    float eps = fleet__imp_attr_float(n, "epsilon", 1e-5f);
    float *s = fleet__malloc(sizeof(float) * 2 * (size_t)(c > 0 ? c : 1));
    if (s == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "onnx: no host memory");
    float *t = s + c;
    for (int64_t i = 0; i < c; i++) {
        double scale = fleet__imp_elem_f64(p[1], i) / sqrt(fleet__imp_elem_f64(p[4], i) + eps);
        s[i] = (float)scale;
        t[i] = (float)(fleet__imp_elem_f64(p[2], i) - fleet__imp_elem_f64(p[3], i) * scale);
    }
    *st_out = s;
    return FLEET_OK;
}

/* Conv whose one reader is an inference BatchNormalization, its weight (and
 * bias) and the BN's parameters f32 constants: the BN folded into the
 * weight and bias, W' = W * s per output channel and b' = b * s + t. *bn the
 * BN node folded, or -1 (then *w and *b untouched). */
static fleet_status conv_batch_norm(fleet__importer *im, const fleet__onnx_node *n,
                                    const fleet__ival *wi, const fleet__ival *bi, fleet_value *w,
                                    fleet_value *b, int *bn)
{
    *bn = -1;
    int r = only_reader(im, n, "BatchNormalization");
    if (r < 0 || wi->kind != FLEET__IV_CONST || wi->dtype != FLEET_DTYPE_F32 || wi->ndim < 3 ||
        (bi != NULL && (bi->kind != FLEET__IV_CONST || bi->dtype != FLEET_DTYPE_F32 ||
                        bi->numel != wi->shape[0])))
        return FLEET_OK;
    const fleet__onnx_node *g = &im->om->graph.nodes[r];
    if (g->n_inputs != 5 || fleet__imp_attr_int(g, "training_mode", 0) != 0 ||
        !fleet__onnx_str_eq(g->inputs[0], n->outputs[0]) || one_output(g) != FLEET_OK)
        return FLEET_OK;
    int64_t c = wi->shape[0], per = c > 0 ? wi->numel / c : 0;
    float *s;
    fleet_status st = batch_norm_consts(im, g, c, &s);
    if (st != FLEET_OK || s == NULL)
        return st;
    float *wf = fleet__malloc(sizeof(float) * (size_t)(wi->numel > 0 ? wi->numel : 1));
    if (wf == NULL) {
        free(s);
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "onnx: no host memory");
    }
    float *t = s + c;
    for (int64_t o = 0; o < c; o++) {
        for (int64_t i = 0; i < per; i++)
            wf[o * per + i] = (float)fleet__imp_elem_f64(wi, o * per + i) * s[o];
        t[o] += bi != NULL ? (float)fleet__imp_elem_f64(bi, o) * s[o] : 0.0f;
    }
    st = fleet_model_constant(im->m, FLEET_DTYPE_F32, wi->ndim, wi->shape, wf, w);
    if (st == FLEET_OK)
        st = fleet_model_constant(im->m, FLEET_DTYPE_F32, 1, &c, t, b);
    free(wf);
    free(s);
    if (st == FLEET_OK)
        *bn = r;
    return st;
}

static fleet_status t_Conv(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, w, b = FLEET_NO_VALUE, y;
    fleet__ival *wi, *bi;
    fleet_status st;
    int bn;
    if ((st = in_value(im, n, 0, &x, NULL)) != FLEET_OK ||
        (st = fleet__imp_input(im, n, 1, &wi)) != FLEET_OK ||
        (st = fleet__imp_input(im, n, 2, &bi)) != FLEET_OK)
        return st;
    if (wi == NULL)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Conv '%.*s' lacks its weight",
                            (int)n->name.n, (const char *)n->name.p);
    if ((st = conv_batch_norm(im, n, wi, bi, &w, &b, &bn)) != FLEET_OK ||
        (bn < 0 && ((st = fleet__imp_value(im, wi, &w)) != FLEET_OK ||
                    (bi != NULL && (st = fleet__imp_value(im, bi, &b)) != FLEET_OK))))
        return st;
    const fleet__value *vx = val(im, x), *vw = val(im, w);
    int sp = vx->ndim - 2;
    if (sp != 1 && sp != 2)
        return fleet__imp_unsupported(n, "a %d-D convolution (fleet has 1-D and 2-D)", sp);
    if (vw->ndim != vx->ndim)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: Conv weight of rank %d", vw->ndim);
    int64_t stride[2], dil[2], kernel[2], pb[2], pe[2];
    for (int k = 0; k < sp; k++)
        kernel[k] = vw->shape[2 + k];
    if ((st = window_attrs(n, sp, "dilations", stride, dil, kernel)) != FLEET_OK ||
        (st = window_pads(n, sp, vx->shape + 2, kernel, stride, dil, pb, pe)) != FLEET_OK)
        return st;
    int64_t groups = fleet__imp_attr_int(n, "group", 1);
    if (sp == 1) {
        if (groups != 1 || pb[0] != pe[0])
            return fleet__imp_unsupported(n, "a 1-D convolution with groups or uneven pads");
        st = fleet_model_conv1d(im->m, x, w, b, stride[0], pb[0], dil[0], &y);
    } else {
        fleet_conv2d_params p = {.stride = {stride[0], stride[1]}, .pad_begin = {pb[0], pb[1]},
                                 .pad_end = {pe[0], pe[1]}, .dilation = {dil[0], dil[1]},
                                 .groups = groups};
        st = fleet_model_conv2d(im->m, x, w, b, &p, &y);
    }
    if (st != FLEET_OK || (st = out(im, n, y)) != FLEET_OK)
        return st;
    if (bn >= 0)
        im->done_by[bn] = y;
    return FLEET_OK;
}

static fleet_status pool(fleet__importer *im, const fleet__onnx_node *n, bool max)
{
    fleet_value x, y;
    fleet_status st;
    if ((st = one_output(n)) != FLEET_OK || (st = in_value(im, n, 0, &x, NULL)) != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    if (vx->ndim != 4)
        return fleet__imp_unsupported(n, "pooling of a %d-D input (fleet has 2-D)", vx->ndim);
    if (fleet__imp_attr_int(n, "storage_order", 0) != 0)
        return fleet__imp_unsupported(n, "storage_order 1");
    int64_t stride[2], dil[2], kernel[2] = {0, 0}, pb[2], pe[2];
    if ((st = window_attrs(n, 2, "dilations", stride, dil, kernel)) != FLEET_OK)
        return st;
    if (kernel[0] <= 0 || kernel[1] <= 0)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: pooling without kernel_shape");
    if ((st = window_pads(n, 2, vx->shape + 2, kernel, stride, dil, pb, pe)) != FLEET_OK)
        return st;
    fleet_pool2d_params p = {
        .kernel = {kernel[0], kernel[1]}, .stride = {stride[0], stride[1]},
        .pad_begin = {pb[0], pb[1]}, .pad_end = {pe[0], pe[1]}, .dilation = {dil[0], dil[1]},
        .ceil_mode = (int)fleet__imp_attr_int(n, "ceil_mode", 0),
        .count_include_pad = (int)fleet__imp_attr_int(n, "count_include_pad", 0)};
    st = max ? fleet_model_max_pool2d(im->m, x, &p, &y) : fleet_model_avg_pool2d(im->m, x, &p, &y);
    return st != FLEET_OK ? st : out(im, n, y);
}

static fleet_status t_MaxPool(fleet__importer *im, const fleet__onnx_node *n)
{
    return pool(im, n, true);
}

static fleet_status t_AveragePool(fleet__importer *im, const fleet__onnx_node *n)
{
    return pool(im, n, false);
}

/* BatchNormalization with parameters the graph computes:
 * (x - mean) / sqrt(var + eps) * scale + bias, each [C] viewed as [C, 1..]. */
static fleet_status batch_norm_graph(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, p[5], k, y, d;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    for (int i = 1; i < 5 && st == FLEET_OK; i++)
        st = in_value(im, n, i, &p[i], NULL);
    if (st != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int64_t shape[FLEET_MAX_DIMS];
    shape[0] = vx->ndim >= 2 ? vx->shape[1] : 0;
    for (int i = 2; i < vx->ndim; i++)
        shape[i - 1] = 1;
    for (int i = 1; i < 5 && st == FLEET_OK; i++)
        st = reshape(im, p[i], vx->ndim - 1, shape, &p[i]);
    float eps = fleet__imp_attr_float(n, "epsilon", 1e-5f);
    if (st != FLEET_OK || (st = scalar_const(im, vx->dtype, eps, &k)) != FLEET_OK ||
        (st = fleet_model_add(im->m, p[4], k, &d)) != FLEET_OK ||
        (st = fleet_model_sqrt(im->m, d, &d)) != FLEET_OK ||
        (st = fleet_model_sub(im->m, x, p[3], &y)) != FLEET_OK ||
        (st = fleet_model_div(im->m, y, d, &y)) != FLEET_OK ||
        (st = fleet_model_mul(im->m, y, p[1], &y)) != FLEET_OK ||
        (st = fleet_model_add(im->m, y, p[2], &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* BatchNormalization at inference: x * s + t per channel (batch_norm_consts),
 * or spelled out when the graph computes its parameters. */
static fleet_status t_BatchNormalization(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_status st = one_output(n);
    if (st != FLEET_OK)
        return st;
    if (fleet__imp_attr_int(n, "training_mode", 0) != 0)
        return fleet__imp_unsupported(n, "training_mode");
    fleet__ival *p[5];
    for (int k = 1; k < 5; k++) {
        if ((st = fleet__imp_input(im, n, k, &p[k])) != FLEET_OK)
            return st;
        if (p[k] == NULL || p[k]->ndim != 1)
            return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: BatchNormalization input %d is "
                                "not [C]", k);
        if (p[k]->kind != FLEET__IV_CONST || p[k]->dtype != FLEET_DTYPE_F32)
            return batch_norm_graph(im, n);
    }
    fleet_value x, sv, tv, y;
    if ((st = in_value(im, n, 0, &x, NULL)) != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int64_t c = p[1]->numel;
    if (vx->ndim < 2 || vx->shape[1] != c || p[2]->numel != c || p[3]->numel != c ||
        p[4]->numel != c)
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: BatchNormalization of mismatched "
                            "channels");
    float *s;
    if ((st = batch_norm_consts(im, n, c, &s)) != FLEET_OK || s == NULL)
        return st != FLEET_OK ? st : batch_norm_graph(im, n);
    int64_t shape[FLEET_MAX_DIMS];
    shape[0] = c;
    for (int d = 2; d < vx->ndim; d++)
        shape[d - 1] = 1;
    st = fleet_model_constant(im->m, FLEET_DTYPE_F32, vx->ndim - 1, shape, s, &sv);
    if (st == FLEET_OK)
        st = fleet_model_constant(im->m, FLEET_DTYPE_F32, vx->ndim - 1, shape, s + c, &tv);
    free(s);
    if (st != FLEET_OK || (st = fleet_model_mul(im->m, x, sv, &y)) != FLEET_OK ||
        (st = fleet_model_add(im->m, y, tv, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* LRN across channels, composed: x / (bias + alpha * mean of x^2 over a
 * window of `size` channels)^beta, the window mean an average pooling of x^2
 * viewed as [N, 1, C, H*W...] with the padding counted (ONNX divides the sum
 * by size). */
static fleet_status t_LRN(fleet__importer *im, const fleet__onnx_node *n)
{
    fleet_value x, sq, pooled, k, a, p, d, y;
    fleet_status st = in_value(im, n, 0, &x, NULL);
    if (st != FLEET_OK)
        return st;
    const fleet__value *vx = val(im, x);
    int64_t size = fleet__imp_attr_int(n, "size", 0);
    float alpha = fleet__imp_attr_float(n, "alpha", 1e-4f), beta = fleet__imp_attr_float(n, "beta", 0.75f);
    float bias = fleet__imp_attr_float(n, "bias", 1.0f);
    if (size < 1 || size > (1 << 20))
        return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: LRN size %lld", (long long)size);
    if (vx->ndim < 3 || vx->shape[1] < 0)
        return fleet__imp_unsupported(n, "LRN of a %d-D input or over the batch", vx->ndim);
    int64_t shape[FLEET_MAX_DIMS], view[4] = {vx->shape[0], 1, vx->shape[1], 1};
    memcpy(shape, vx->shape, sizeof shape);
    for (int i = 2; i < vx->ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(view[3], shape[i], &view[3]))
            return fleet__imp_unsupported(n, "LRN over a spatial dim that is the batch");
    }
    fleet_pool2d_params pp = {.kernel = {size, 1}, .stride = {1, 1},
                              .pad_begin = {(size - 1) / 2, 0}, .pad_end = {size - 1 - (size - 1) / 2, 0},
                              .dilation = {1, 1}, .count_include_pad = 1};
    if ((st = fleet_model_mul(im->m, x, x, &sq)) != FLEET_OK ||
        (st = reshape(im, sq, 4, view, &sq)) != FLEET_OK ||
        (st = fleet_model_avg_pool2d(im->m, sq, &pp, &pooled)) != FLEET_OK ||
        (st = reshape(im, pooled, vx->ndim, shape, &pooled)) != FLEET_OK ||
        (st = scalar_const(im, vx->dtype, alpha, &a)) != FLEET_OK ||
        (st = fleet_model_mul(im->m, pooled, a, &d)) != FLEET_OK ||
        (st = scalar_const(im, vx->dtype, bias, &k)) != FLEET_OK ||
        (st = fleet_model_add(im->m, d, k, &d)) != FLEET_OK ||
        (st = scalar_const(im, vx->dtype, beta, &p)) != FLEET_OK ||
        (st = fleet_model_pow(im->m, d, p, &d)) != FLEET_OK ||
        (st = fleet_model_div(im->m, x, d, &y)) != FLEET_OK)
        return st;
    return out(im, n, y);
}

/* ---- the table ---------------------------------------------------------------------------- */

static const struct {
    const char *op;
    fleet__onnx_translate fn;
    int64_t since; /* the first opset fleet reads it at */
} ops[] = {
    {"Abs", t_Abs, 7},
    {"Add", t_Add, 7},
    {"And", t_And, 7},
    {"AveragePool", t_AveragePool, 7},
    {"BatchNormalization", t_BatchNormalization, 7},
    {"Cast", t_Cast, 7},
    {"Clip", t_Clip, 7},
    {"Concat", t_Concat, 7},
    {"Constant", t_load_only, 7},
    {"ConstantOfShape", t_ConstantOfShape, 9},
    {"Conv", t_Conv, 7},
    {"CumSum", t_CumSum, 11},
    {"Div", t_Div, 7},
    {"Dropout", t_Dropout, 7},
    {"Equal", t_Equal, 7},
    {"Erf", t_Erf, 9},
    {"Exp", t_Exp, 7},
    {"Expand", t_Expand, 8},
    {"Flatten", t_Flatten, 7},
    {"Gather", t_Gather, 7},
    {"GatherND", t_GatherND, 11},
    {"Gelu", t_Gelu, 20},
    {"Gemm", t_Gemm, 7},
    {"GlobalAveragePool", t_GlobalAveragePool, 1},
    {"Greater", t_Greater, 7},
    {"GreaterOrEqual", t_GreaterOrEqual, 12},
    {"Identity", t_Identity, 7},
    {"LayerNormalization", t_LayerNormalization, 17},
    {"LRN", t_LRN, 7},
    {"LeakyRelu", t_LeakyRelu, 7},
    {"Less", t_Less, 7},
    {"LessOrEqual", t_LessOrEqual, 12},
    {"Log", t_Log, 7},
    {"LogSoftmax", t_LogSoftmax, 7},
    {"MatMul", t_MatMul, 7},
    {"Max", t_Max, 8},
    {"MaxPool", t_MaxPool, 7},
    {"Min", t_Min, 8},
    {"Mul", t_Mul, 7},
    {"Neg", t_Neg, 7},
    {"Not", t_Not, 1},
    {"Or", t_Or, 7},
    {"Pow", t_Pow, 7},
    {"Range", t_Range, 11},
    {"Reciprocal", t_Reciprocal, 7},
    {"ReduceMax", t_ReduceMax, 7},
    {"ReduceMean", t_ReduceMean, 7},
    {"ReduceSum", t_ReduceSum, 7},
    {"Relu", t_Relu, 7},
    {"Reshape", t_Reshape, 7},
    {"Shape", t_load_only, 7},
    {"Sigmoid", t_Sigmoid, 7},
    {"Slice", t_Slice, 7},
    {"Softmax", t_Softmax, 7},
    {"Split", t_Split, 7},
    {"Sqrt", t_Sqrt, 7},
    {"Squeeze", t_Squeeze, 7},
    {"Sub", t_Sub, 7},
    {"Sum", t_Sum, 8},
    {"Tanh", t_Tanh, 7},
    {"Transpose", t_Transpose, 7},
    {"Trilu", t_Trilu, 14},
    {"Unsqueeze", t_Unsqueeze, 7},
    {"Where", t_Where, 9},
};

#define OPSET_MAX 21

fleet__onnx_translate fleet__onnx_translator(fleet__onnx_str op_type, int64_t opset)
{
    if (opset > OPSET_MAX)
        return NULL;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (fleet__onnx_str_is(op_type, ops[i].op))
            return opset >= ops[i].since ? ops[i].fn : NULL;
    return NULL;
}
