/* ops/pool.c — fleet_max_pool2d and fleet_avg_pool2d: the window rule of
 * tensor/shape.h, then one backend pooling kernel over contiguous NCHW. */
#include "core/error.h"
#include "ops/ops_internal.h"

static fleet_status pool(fleet__pool_op op, const char *fn, const fleet_tensor *x_h,
                         const fleet_pool2d_params *p, fleet_tensor *out_h)
{
    const fleet_tensor *ts[] = {x_h, out_h};
    static const char *const names[] = {"x", "out"};
    fleet_status st = fleet__op_enter_all(fn, ts, names, 2);
    if (st != FLEET_OK)
        return st;
    FLEET_CHECK_ARG(p != NULL, FLEET_ERR_NULL_POINTER, "%s: params is NULL", fn);
    const fleet_tensor *x = ts[0];
    fleet_tensor *out = (fleet_tensor *)ts[1];
    fleet__window win[2];
    for (int k = 0; k < 2; k++)
        win[k] = (fleet__window){.kernel = p->kernel[k], .stride = p->stride[k],
                                 .pad_begin = p->pad_begin[k], .pad_end = p->pad_end[k],
                                 .dilation = p->dilation[k], .ceil_mode = p->ceil_mode != 0};
    FLEET_CHECK_ARG(op == FLEET__POOL_MAX || !p->count_include_pad ||
                        (p->dilation[0] == 1 && p->dilation[1] == 1),
                    FLEET_ERR_INVALID_ARGUMENT,
                    "%s: count_include_pad takes no dilation (it is 1 in PyTorch and ONNX)", fn);
    fleet__dims dx = FLEET__DIMS(x), got = FLEET__DIMS(out), want;
    if ((st = fleet__shape_pool(fn, 2, &dx, win, &want)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want, "[N, C, OH, OW]")) != FLEET_OK)
        return st;
    fleet__op_call call;
    if ((st = fleet__op_begin(&call, fn, ts, names, 2, FLEET__OP_CONTIGUOUS)) != FLEET_OK ||
        (st = fleet__backend_require(fn, call.device, FLEET__CAN_POOL)) != FLEET_OK)
        return st;
    if (fleet__overlaps(out, x))
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps x", fn);
    return fleet__op_pool(&call, op, p, x, out);
}

fleet_status fleet__op_pool(const fleet__op_call *call, fleet__pool_op op,
                            const fleet_pool2d_params *p, const fleet_tensor *x,
                            fleet_tensor *out)
{
    if (fleet_tensor_numel(out) == 0)
        return FLEET_OK;
    fleet__pool_args a = {
        .op = op, .dtype = x->dtype,
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
        .oh = out->shape[2], .ow = out->shape[3],
        .kh = p->kernel[0], .kw = p->kernel[1], .sh = p->stride[0], .sw = p->stride[1],
        .ph = p->pad_begin[0], .pw = p->pad_begin[1],
        .ph_end = p->pad_end[0], .pw_end = p->pad_end[1],
        .dh = p->dilation[0], .dw = p->dilation[1],
        .count_include_pad = p->count_include_pad != 0,
        .x = fleet_tensor_data(x), .out = fleet_tensor_data(out),
    };
    return fleet__backend_pool2d(call->device, call->native, &a);
}

fleet_status fleet_max_pool2d(const fleet_tensor *x, const fleet_pool2d_params *params,
                              fleet_tensor *out)
{
    return pool(FLEET__POOL_MAX, "fleet_max_pool2d", x, params, out);
}

fleet_status fleet_avg_pool2d(const fleet_tensor *x, const fleet_pool2d_params *params,
                              fleet_tensor *out)
{
    return pool(FLEET__POOL_AVG, "fleet_avg_pool2d", x, params, out);
}
