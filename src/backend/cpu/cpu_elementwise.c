/* backend/cpu/cpu_elementwise.c — strided elementwise kernels.
 *
 * The ops layer hands over views already broadcast (zero strides) and
 * coalesced, so the kernel walks out's index space row by row: the innermost
 * dimension is a tight loop per op (the switch stays outside it), the outer
 * dimensions are an odometer over byte offsets. Arithmetic is f32, and
 * for the integer ops (fleet__ew_takes_integers) i32 and i64 too; COPY
 * moves elements of any size; CAST converts between f32, f16, bf16, i32,
 * i64 and bool through double (the 16-bit floats by core/half.h); comparisons write bool; WHERE picks elements of any
 * size by a bool condition. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_stream.h"
#include "backend/cpu/vmath.h"
#include "core/error.h"
#include "core/half.h"

_Static_assert(sizeof(fleet__elementwise_args) <= FLEET__CPU_TASK_ARGS,
               "elementwise args fit a task");

static inline float gelu(float x)
{
    return 0.5f * x * (1.0f + fleet__verff(x * 0.70710678118654752f));
}

static inline float gelu_tanh(float x)
{
    return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}

static inline float sigmoid(float x)
{
    return 1.0f / (1.0f + fleet__vexpf(-x));
}

/* One row: n elements, each view's pointer at its row start and its stride
 * in bytes. */
typedef struct row {
    int64_t n;
    char *o;
    const char *a, *b, *c;
    int64_t so, sa, sb, sc;
} row;

/* Float rows: o[i*so] = expr over x = a[i*sa] (and y = b[i*sb]), strides
 * in elements; a unit-stride copy of the loop lets the compiler vectorise
 * the contiguous case. */
#define ROW(expr)                                                                        \
    do {                                                                                 \
        if (so == 1 && sa == 1 && (b == NULL || sb == 1)) {                              \
            for (int64_t i = 0; i < n; i++) {                                            \
                float x = a[i], y = b ? b[i] : 0.0f;                                     \
                (void)y;                                                                 \
                o[i] = (expr);                                                           \
            }                                                                            \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) {                                            \
                float x = a[i * sa], y = b ? b[i * sb] : 0.0f;                           \
                (void)y;                                                                 \
                o[i * so] = (expr);                                                      \
            }                                                                            \
        }                                                                                \
    } while (0)
/* Comparisons: bool out, its stride in bytes. */
#define CMP(expr)                                                                        \
    for (int64_t i = 0; i < n; i++) {                                                    \
        float x = a[i * sa], y = b ? b[i * sb] : 0.0f;                                   \
        ob[i * r->so] = (unsigned char)(expr);                                           \
    }

static inline __attribute__((always_inline)) void float_row_body(const fleet__elementwise_args *e,
                                                                  const row *r)
{
    float alpha = e->alpha, beta = e->beta;
    int64_t n = r->n, so = r->so / 4, sa = r->sa / 4, sb = r->sb / 4;
    float *o = (float *)(void *)r->o;
    unsigned char *ob = (unsigned char *)r->o;
    const float *a = (const float *)(const void *)r->a;
    const float *b = r->b != NULL ? (const float *)(const void *)r->b : NULL;
    if (b == NULL && fleet__ew_arity((fleet__ew_op)e->op) == 2)
        return; /* a binary op always has b: the task sets it */
    switch ((fleet__ew_op)e->op) {
    case FLEET__EW_RELU: ROW(x > 0.0f ? x : 0.0f); break;
    case FLEET__EW_GELU: ROW(gelu(x)); break;
    case FLEET__EW_SILU: ROW(x * sigmoid(x)); break;
    case FLEET__EW_TANH: ROW(tanhf(x)); break;
    case FLEET__EW_SIGMOID: ROW(sigmoid(x)); break;
    case FLEET__EW_ERF: ROW(fleet__verff(x)); break;
    case FLEET__EW_EXP: ROW(fleet__vexpf(x)); break;
    case FLEET__EW_LOG: ROW(logf(x)); break;
    case FLEET__EW_SQRT: ROW(sqrtf(x)); break;
    case FLEET__EW_NEG: ROW(-x); break;
    case FLEET__EW_ABS: ROW(fabsf(x)); break;
    case FLEET__EW_RECIPROCAL: ROW(1.0f / x); break;
    case FLEET__EW_GELU_TANH: ROW(gelu_tanh(x)); break;
    case FLEET__EW_LEAKY_RELU: ROW(x >= 0.0f ? x : alpha * x); break;
    case FLEET__EW_CLIP: ROW(fminf(fmaxf(x, alpha), beta)); break;
    case FLEET__EW_ADD: ROW(x + y); break;
    case FLEET__EW_SUB: ROW(x - y); break;
    case FLEET__EW_MUL: ROW(x * y); break;
    case FLEET__EW_DIV: ROW(x / y); break;
    case FLEET__EW_POW: ROW(powf(x, y)); break;
    case FLEET__EW_MAX: ROW(isnan(x) || isnan(y) ? x + y : fmaxf(x, y)); break;
    case FLEET__EW_MIN: ROW(isnan(x) || isnan(y) ? x + y : fminf(x, y)); break;
    case FLEET__EW_EQUAL: CMP(x == y); break;
    case FLEET__EW_LESS: CMP(x < y); break;
    case FLEET__EW_LESS_EQUAL: CMP(x <= y); break;
    case FLEET__EW_GREATER: CMP(x > y); break;
    case FLEET__EW_GREATER_EQUAL: CMP(x >= y); break;
    case FLEET__EW_COPY: case FLEET__EW_CAST: case FLEET__EW_WHERE: case FLEET__EW_COUNT_:
        break; /* not float ops */
    }
}

/* float_row_body built for AVX2 and for the baseline (vmath.h), the CPU
 * choosing at each call: the unit-stride loops then run 8 lanes wide (GELU
 * over 1M elements 9.1 -> 0.67 ns per element on the 2-vCPU Zen 5 development
 * machine); CMakeLists.txt lets the loops vectorise (their selects
 * if-converted). */
static FLEET__AVX2 void float_row_avx2(const fleet__elementwise_args *e, const row *r)
{
    float_row_body(e, r);
}

static void float_row(const fleet__elementwise_args *e, const row *r)
{
    if (fleet__cpu_avx2())
        float_row_avx2(e, r);
    else
        float_row_body(e, r);
}

/* Integer rows: T in (and out, but a comparison's bool), strides in bytes;
 * arithmetic through the unsigned type so that overflow wraps. */
#define INT_ROW(T, U, expr)                                                              \
    for (int64_t i = 0; i < r->n; i++) {                                                 \
        T x, y = 0, v;                                                                   \
        memcpy(&x, r->a + i * r->sa, sizeof x);                                          \
        if (r->b != NULL)                                                                \
            memcpy(&y, r->b + i * r->sb, sizeof y);                                      \
        (void)y;                                                                         \
        v = (T)(expr);                                                                   \
        memcpy(r->o + i * r->so, &v, sizeof v);                                          \
    }
#define INT_CMP(T, expr)                                                                 \
    for (int64_t i = 0; i < r->n; i++) {                                                 \
        T x, y = 0;                                                                      \
        memcpy(&x, r->a + i * r->sa, sizeof x);                                          \
        if (r->b != NULL)                                                                \
            memcpy(&y, r->b + i * r->sb, sizeof y);                                      \
        *(unsigned char *)(r->o + i * r->so) = (unsigned char)(expr);                    \
    }
#define INT_OPS(T, U, MIN_)                                                              \
    switch ((fleet__ew_op)e->op) {                                                       \
    case FLEET__EW_NEG: INT_ROW(T, U, (U)0 - (U)x); break;                               \
    case FLEET__EW_ABS: INT_ROW(T, U, x < 0 ? (U)0 - (U)x : (U)x); break;                \
    case FLEET__EW_ADD: INT_ROW(T, U, (U)x + (U)y); break;                               \
    case FLEET__EW_SUB: INT_ROW(T, U, (U)x - (U)y); break;                               \
    case FLEET__EW_MUL: INT_ROW(T, U, (U)x * (U)y); break;                               \
    case FLEET__EW_DIV: INT_ROW(T, U, y == 0 ? 0 : (x == MIN_ && y == -1) ? x : x / y);  \
        break;                                                                           \
    case FLEET__EW_MAX: INT_ROW(T, U, x > y ? x : y); break;                             \
    case FLEET__EW_MIN: INT_ROW(T, U, x < y ? x : y); break;                             \
    case FLEET__EW_EQUAL: INT_CMP(T, x == y); break;                                     \
    case FLEET__EW_LESS: INT_CMP(T, x < y); break;                                       \
    case FLEET__EW_LESS_EQUAL: INT_CMP(T, x <= y); break;                                \
    case FLEET__EW_GREATER: INT_CMP(T, x > y); break;                                    \
    case FLEET__EW_GREATER_EQUAL: INT_CMP(T, x >= y); break;                             \
    default: break; /* not integer ops (fleet__ew_takes_integers) */                    \
    }

static void int_row(const fleet__elementwise_args *e, const row *r)
{
    if (r->b == NULL && fleet__ew_arity((fleet__ew_op)e->op) == 2)
        return; /* a binary op always has b: the task sets it */
    if (e->dtype == FLEET_DTYPE_I64)
        INT_OPS(int64_t, uint64_t, INT64_MIN)
    else
        INT_OPS(int32_t, uint32_t, INT32_MIN)
}

#undef INT_ROW
#undef INT_CMP
#undef INT_OPS

static void copy_row(const row *r, size_t es)
{
    if (r->so == (int64_t)es && r->sa == (int64_t)es) {
        memcpy(r->o, r->a, (size_t)r->n * es);
        return;
    }
    for (int64_t i = 0; i < r->n; i++)
        memcpy(r->o + i * r->so, r->a + i * r->sa, es);
}

static double load(const char *p, int dtype)
{
    float f;
    int32_t i32;
    int64_t i64;
    uint16_t h;
    switch (dtype) {
    case FLEET_DTYPE_F32: memcpy(&f, p, 4); return f;
    case FLEET_DTYPE_F16: memcpy(&h, p, 2); return fleet__f16_to_f32(h);
    case FLEET_DTYPE_BF16: memcpy(&h, p, 2); return fleet__bf16_to_f32(h);
    case FLEET_DTYPE_I32: memcpy(&i32, p, 4); return i32;
    case FLEET_DTYPE_I64: memcpy(&i64, p, 8); return (double)i64;
    case FLEET_DTYPE_BOOL: return *(const unsigned char *)p != 0;
    }
    return 0.0;
}

/* Truncation toward zero, saturating (NaN gives 0), as numpy's astype on
 * the values every framework agrees on. */
static int64_t to_int(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    if (v <= lo)
        return (int64_t)lo;
    if (v >= hi)
        return (int64_t)hi;
    return (int64_t)v;
}

static void store(char *p, int dtype, double v)
{
    switch (dtype) {
    case FLEET_DTYPE_F32: {
        float f = (float)v;
        memcpy(p, &f, 4);
        break;
    }
    case FLEET_DTYPE_F16:
    case FLEET_DTYPE_BF16: {
        uint16_t h = dtype == FLEET_DTYPE_F16 ? fleet__f32_to_f16((float)v)
                                              : fleet__f32_to_bf16((float)v);
        memcpy(p, &h, 2);
        break;
    }
    case FLEET_DTYPE_I32: {
        int32_t i32 = (int32_t)to_int(v, -2147483648.0, 2147483647.0);
        memcpy(p, &i32, 4);
        break;
    }
    case FLEET_DTYPE_I64: {
        int64_t i64 = to_int(v, -9223372036854775808.0, 9223372036854774784.0);
        memcpy(p, &i64, 8);
        break;
    }
    case FLEET_DTYPE_BOOL: *(unsigned char *)p = v != 0.0; break;
    }
}

static void cast_row(const fleet__elementwise_args *e, const row *r)
{
    if (e->dtype == FLEET_DTYPE_I64 && e->out_dtype == FLEET_DTYPE_I64) {
        copy_row(r, 8);
        return;
    }
    for (int64_t i = 0; i < r->n; i++)
        store(r->o + i * r->so, e->out_dtype, load(r->a + i * r->sa, e->dtype));
}

static void where_row(const row *r, size_t es)
{
    if (r->c == NULL || r->b == NULL)
        return; /* WHERE always has both: its views are set by the task */
    for (int64_t i = 0; i < r->n; i++) {
        const char *src = *(const unsigned char *)(r->c + i * r->sc) ? r->a + i * r->sa
                                                                      : r->b + i * r->sb;
        memcpy(r->o + i * r->so, src, es);
    }
}

static void do_row(const fleet__elementwise_args *e, const row *r)
{
    size_t es = fleet_dtype_size((fleet_dtype)e->dtype);
    switch ((fleet__ew_op)e->op) {
    case FLEET__EW_COPY: copy_row(r, es); break;
    case FLEET__EW_CAST: cast_row(e, r); break;
    case FLEET__EW_WHERE: where_row(r, es); break;
    default:
        if (e->dtype == FLEET_DTYPE_F32)
            float_row(e, r);
        else
            int_row(e, r);
        break;
    }
}

static void elementwise_task(const void *p)
{
    const fleet__elementwise_args *e = p;
    int arity = fleet__ew_arity((fleet__ew_op)e->op);
    const fleet__view *v[4] = {&e->out, &e->a, arity >= 2 ? &e->b : NULL,
                               arity == 3 ? &e->c : NULL};
    size_t es[4] = {fleet_dtype_size((fleet_dtype)e->out_dtype),
                    fleet_dtype_size((fleet_dtype)e->dtype),
                    fleet_dtype_size((fleet_dtype)e->dtype), 1};
    const fleet__view *vo = &e->out;
    int nd = vo->ndim, last = nd - 1;
    int64_t rows = 1;
    for (int d = 0; d < last; d++)
        rows *= vo->shape[d];
    /* byte strides per view and dimension (0 for an absent view) */
    int64_t bs[4][FLEET__VIEW_MAX_DIMS] = {{0}};
    for (int k = 0; k < 4; k++)
        for (int d = 0; v[k] != NULL && d < nd; d++)
            bs[k][d] = v[k]->strides[d] * (int64_t)es[k];
    row r = {.n = nd > 0 ? vo->shape[last] : 1,
             .so = nd > 0 ? bs[0][last] : 0, .sa = nd > 0 ? bs[1][last] : 0,
             .sb = nd > 0 ? bs[2][last] : 0, .sc = nd > 0 ? bs[3][last] : 0};
    int64_t idx[FLEET__VIEW_MAX_DIMS] = {0}, off[4] = {0};
    for (int64_t n = 0; n < rows; n++) {
        r.o = (char *)vo->data + off[0];
        r.a = (const char *)e->a.data + off[1];
        r.b = v[2] ? (const char *)e->b.data + off[2] : NULL;
        r.c = v[3] ? (const char *)e->c.data + off[3] : NULL;
        do_row(e, &r);
        for (int d = last - 1; d >= 0; d--) { /* odometer over the outer dims */
            for (int k = 0; k < 4; k++)
                off[k] += bs[k][d];
            if (++idx[d] < vo->shape[d])
                break;
            for (int k = 0; k < 4; k++)
                off[k] -= bs[k][d] * vo->shape[d];
            idx[d] = 0;
        }
    }
}

bool fleet__cpu_elementwise_supports(int op, int dtype, int out_dtype)
{
    switch ((fleet__ew_op)op) {
    case FLEET__EW_COPY: return fleet_dtype_size((fleet_dtype)dtype) != 0 && dtype == out_dtype;
    case FLEET__EW_CAST: return fleet_dtype_size((fleet_dtype)dtype) != 0 &&
                                fleet_dtype_size((fleet_dtype)out_dtype) != 0;
    case FLEET__EW_WHERE: return fleet_dtype_size((fleet_dtype)dtype) != 0 && dtype == out_dtype;
    default: {
        bool integer = (dtype == FLEET_DTYPE_I32 || dtype == FLEET_DTYPE_I64) &&
                       fleet__ew_takes_integers((fleet__ew_op)op);
        if (op < 0 || op >= FLEET__EW_COUNT_ || (dtype != FLEET_DTYPE_F32 && !integer))
            return false;
        return out_dtype == (fleet__ew_is_compare((fleet__ew_op)op) ? FLEET_DTYPE_BOOL : dtype);
    }
    }
}

fleet_status fleet__cpu_elementwise(void *stream, const fleet__elementwise_args *args)
{
    if (!fleet__cpu_elementwise_supports(args->op, args->dtype, args->out_dtype))
        return fleet__error(FLEET_ERR_UNSUPPORTED,
                            "cpu backend: elementwise op %d does not take %s to %s", args->op,
                            fleet_dtype_name((fleet_dtype)args->dtype),
                            fleet_dtype_name((fleet_dtype)args->out_dtype));
    for (int d = 0; d < args->out.ndim; d++)
        if (args->out.shape[d] == 0)
            return FLEET_OK;
    return fleet__cpu_stream_submit(stream, elementwise_task, args, sizeof *args);
}
