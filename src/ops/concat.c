/* ops/concat.c — fleet_concat: one fleet_copy per input into its slice of
 * out. No kernel of its own: the copies take any input layout.
 *
 * The slices are view headers on the stack (what fleet_tensor_slice makes,
 * without its allocation), so once the checks passed nothing can fail
 * half-way for want of memory. */
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "ops/ops_internal.h"
#include "core/prim.h"

fleet_status fleet__op_concat(const fleet__op_call *call, const fleet_tensor *const *inputs, int n,
                              int d, fleet_tensor *out)
{
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        fleet_tensor part = *out;
        part.shape[d] = inputs[i]->shape[d];
        part.offset += at * out->strides[d];
        at += inputs[i]->shape[d];
        if (fleet_tensor_numel(&part) == 0)
            continue;
        fleet_status st = fleet__op_elementwise(call, FLEET__EW_COPY, inputs[i], NULL, &part);
        if (st != FLEET_OK)
            return st; /* a backend failure mid-way: out is then unspecified */
    }
    return FLEET_OK;
}

static fleet_status concat(const char *fn, const fleet_tensor *const *inputs, int n, int dim,
                           fleet__dims *dims, fleet_tensor *out)
{
    fleet_status st;
    char name[32];
    for (int i = 0; i < n; i++)
        dims[i] = FLEET__DIMS(inputs[i]);
    fleet__dims got = FLEET__DIMS(out), want;
    int d;
    if ((st = fleet__shape_concat(fn, dims, n, dim, &want, &d)) != FLEET_OK ||
        (st = fleet__shape_expect(fn, "out", &got, &want, "the inputs joined along dim")) !=
            FLEET_OK)
        return st;
    fleet__op_call call = {0};
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "inputs[%d]", i);
        const fleet_tensor *pair[] = {out, inputs[i]};
        const char *const pnames[] = {"out", name};
        if ((st = fleet__op_begin(&call, fn, pair, pnames, 2, FLEET__OP_ANY_DTYPE)) != FLEET_OK)
            return st;
        if (inputs[i]->dtype != out->dtype)
            return fleet__error(FLEET_ERR_DTYPE_MISMATCH, "%s: out is %s, %s is %s", fn,
                                fleet_dtype_name(out->dtype), name,
                                fleet_dtype_name(inputs[i]->dtype));
    }
    if ((st = fleet__backend_require_elementwise(fn, call.device, FLEET__EW_COPY, out->dtype,
                                                 out->dtype)) != FLEET_OK)
        return st;
    if ((st = fleet__out_distinct(fn, out)) != FLEET_OK)
        return st;
    for (int i = 0; i < n; i++)
        if (fleet__overlaps(out, inputs[i]))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps inputs[%d]", fn, i);
    return fleet__op_concat(&call, inputs, n, d, out);
}

fleet_status fleet_concat(const fleet_tensor *const *inputs, int n, int dim, fleet_tensor *out_h)
{
    static const char fn[] = "fleet_concat";
    const fleet_tensor *out = out_h;
    fleet_status st = fleet__enter_tensor(&out, fn, "out");
    if (st != FLEET_OK)
        return st;
    if (inputs == NULL)
        return fleet__error(FLEET_ERR_NULL_POINTER, "%s: inputs is NULL", fn);
    if (n < 1)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: n is %d, need at least 1 input", fn, n);
    /* n resolved inputs, then their dims for the shape rule */
    const fleet_tensor **in = fleet__malloc((sizeof *in + sizeof(fleet__dims)) * (size_t)n);
    if (in == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    fleet__dims *dims = (fleet__dims *)(void *)(in + n);
    char name[32];
    for (int i = 0; i < n && st == FLEET_OK; i++) {
        snprintf(name, sizeof name, "inputs[%d]", i);
        in[i] = inputs[i];
        st = fleet__enter_tensor(&in[i], fn, name);
    }
    if (st == FLEET_OK)
        st = concat(fn, in, n, dim, dims, (fleet_tensor *)out);
    free(in);
    return st;
}
