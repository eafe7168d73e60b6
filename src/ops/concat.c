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

static fleet_status concat(const char *fn, const fleet_tensor *const *inputs, int n, int dim,
                           fleet_tensor *out)
{
    fleet_status st;
    char name[32];
    int d = dim < 0 ? dim + out->ndim : dim;
    if (d < 0 || d >= out->ndim)
        return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: dim %d of a %d-D out", fn, dim,
                            out->ndim);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const fleet_tensor *x = inputs[i];
        snprintf(name, sizeof name, "inputs[%d]", i);
        bool ok = x->ndim == out->ndim;
        for (int k = 0; ok && k < out->ndim; k++)
            ok = k == d || x->shape[k] == out->shape[k];
        if (!ok)
            return fleet__op_shape_error(fn, "inputs must have out's shape except along dim", x,
                                         name, out, "out");
        total += x->shape[d];
    }
    if (total != out->shape[d])
        return fleet__error(FLEET_ERR_SHAPE_MISMATCH,
                            "%s: the inputs' sizes along dim %d add up to %lld, out's is %lld", fn,
                            d, (long long)total, (long long)out->shape[d]);
    fleet__op_call call;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "inputs[%d]", i);
        const fleet_tensor *pair[] = {out, inputs[i]};
        const char *const pnames[] = {"out", name};
        if ((st = fleet__op_begin(&call, fn, pair, pnames, 2, FLEET__OP_HALF_ON_CUDA)) != FLEET_OK)
            return st;
    }
    if ((st = fleet__out_distinct(fn, out)) != FLEET_OK)
        return st;
    for (int i = 0; i < n; i++)
        if (fleet__overlaps(out, inputs[i]))
            return fleet__error(FLEET_ERR_INVALID_ARGUMENT, "%s: out overlaps inputs[%d]", fn, i);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        fleet_tensor part = *out;
        part.shape[d] = inputs[i]->shape[d];
        part.offset += at * out->strides[d];
        at += inputs[i]->shape[d];
        if (fleet_tensor_numel(&part) == 0)
            continue;
        if ((st = fleet_copy(inputs[i], &part)) != FLEET_OK)
            return st; /* a backend failure mid-way: out is then unspecified */
    }
    return FLEET_OK;
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
    const fleet_tensor **in = fleet__malloc(sizeof *in * (size_t)n);
    if (in == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "%s: no host memory", fn);
    char name[32];
    for (int i = 0; i < n && st == FLEET_OK; i++) {
        snprintf(name, sizeof name, "inputs[%d]", i);
        in[i] = inputs[i];
        st = fleet__enter_tensor(&in[i], fn, name);
    }
    if (st == FLEET_OK)
        st = concat(fn, in, n, dim, (fleet_tensor *)out);
    free(in);
    return st;
}
