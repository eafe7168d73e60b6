/* backend/cpu/cpu_elementwise.c — strided elementwise kernels (f32).
 *
 * The ops layer hands over views already broadcast (zero strides) and
 * coalesced, so the kernel walks out's index space row by row: the innermost
 * dimension is a tight loop per op (the switch stays outside it), the outer
 * dimensions are an odometer over offsets. */
#include <math.h>
#include <stdbool.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_stream.h"
#include "core/error.h"

_Static_assert(sizeof(fleet__elementwise_args) <= FLEET__CPU_TASK_ARGS,
               "elementwise args fit a task");

static inline float gelu(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

static inline float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* One row of n elements: o[i*so] = f(a[i*sa], b[i*sb]). */
#define ROW(expr)                                                                        \
    for (int64_t i = 0; i < n; i++) {                                                    \
        float x = a[i * sa];                                                             \
        float y = b ? b[i * sb] : 0.0f;                                                  \
        (void)y;                                                                         \
        o[i * so] = (expr);                                                              \
    }

static void row(int op, int64_t n, float *o, int64_t so, const float *a, int64_t sa,
                const float *b, int64_t sb)
{
    switch ((fleet__ew_op)op) {
    case FLEET__EW_COPY: ROW(x); break;
    case FLEET__EW_RELU: ROW(x > 0.0f ? x : 0.0f); break;
    case FLEET__EW_GELU: ROW(gelu(x)); break;
    case FLEET__EW_SILU: ROW(x * sigmoid(x)); break;
    case FLEET__EW_TANH: ROW(tanhf(x)); break;
    case FLEET__EW_SIGMOID: ROW(sigmoid(x)); break;
    case FLEET__EW_ADD: ROW(x + y); break;
    case FLEET__EW_SUB: ROW(x - y); break;
    case FLEET__EW_MUL: ROW(x * y); break;
    case FLEET__EW_DIV: ROW(x / y); break;
    case FLEET__EW_COUNT_: break;
    }
}

static void elementwise_task(const void *p)
{
    const fleet__elementwise_args *e = p;
    const fleet__view *vo = &e->out, *va = &e->a, *vb = &e->b;
    int nd = vo->ndim, last = nd - 1;
    bool binary = fleet__ew_is_binary((fleet__ew_op)e->op);
    int64_t rows = 1;
    for (int d = 0; d < last; d++)
        rows *= vo->shape[d];
    int64_t n = nd > 0 ? vo->shape[last] : 1;
    int64_t so = nd > 0 ? vo->strides[last] : 1, sa = nd > 0 ? va->strides[last] : 1;
    int64_t sb = nd > 0 && binary ? vb->strides[last] : 0;
    int64_t idx[FLEET__VIEW_MAX_DIMS] = {0};
    int64_t oo = 0, oa = 0, ob = 0;
    for (int64_t r = 0; r < rows; r++) {
        row(e->op, n, (float *)vo->data + oo, so, (const float *)va->data + oa, sa,
            binary ? (const float *)vb->data + ob : NULL, sb);
        for (int d = last - 1; d >= 0; d--) { /* odometer over the outer dims */
            oo += vo->strides[d];
            oa += va->strides[d];
            ob += binary ? vb->strides[d] : 0;
            if (++idx[d] < vo->shape[d])
                break;
            oo -= vo->strides[d] * vo->shape[d];
            oa -= va->strides[d] * vo->shape[d];
            ob -= binary ? vb->strides[d] * vo->shape[d] : 0;
            idx[d] = 0;
        }
    }
}

fleet_status fleet__cpu_elementwise(void *stream, const fleet__elementwise_args *args)
{
    if (args->dtype != FLEET_DTYPE_F32)
        return fleet__error(FLEET_ERR_UNSUPPORTED, "cpu backend: elementwise ops support f32 only");
    for (int d = 0; d < args->out.ndim; d++)
        if (args->out.shape[d] == 0)
            return FLEET_OK;
    return fleet__cpu_stream_submit(stream, elementwise_task, args, sizeof *args);
}
