/* fleet/model.h — models: a graph of ops built once, compiled once per input
 * shape, run by any number of threads at once.
 *
 * Build. A model is built on one device through the functions below, each
 * adding an input, a weight or an op and giving back the id of the value it
 * defines. Values are typed and shaped; a dimension may be FLEET_DIM_BATCH,
 * the model's one symbolic batch size, fixed by the inputs of each run. Shapes
 * are inferred and checked as the graph grows, so a wrong shape is reported
 * by the call that adds the op. Operands must already exist (an unknown id is
 * an error), so a graph is acyclic by construction.
 *
 *     fleet_model *m;          fleet_model_create(dev, &m);
 *     int64_t xs[] = {FLEET_DIM_BATCH, 256}, ws[] = {512, 256}, bs[] = {512};
 *     fleet_value x, w, b, h, y;
 *     fleet_model_input(m, "x", FLEET_DTYPE_F32, 2, xs, &x);
 *     fleet_model_weight(m, "fc.weight", FLEET_DTYPE_F32, 2, ws, &w);
 *     fleet_model_weight(m, "fc.bias", FLEET_DTYPE_F32, 1, bs, &b);
 *     fleet_model_linear(m, x, w, b, &h);
 *     fleet_model_relu(m, h, &y);
 *     fleet_model_output(m, "y", y);
 *     fleet_model_load_safetensors(m, "weights.safetensors", NULL); // or set_weight
 *     fleet_model_finalize(m);        // checks, uploads the weights once
 *     ...                             // any thread, any number at once:
 *     fleet_model_run(m, &x_tensor, 1, &y_tensor, 1);
 *
 * Weights. fleet_model_weight declares a constant by name; its data comes from
 * host memory (fleet_model_set_weight) or a safetensors file
 * (fleet_model_load_safetensors, matched by name, dtype and shape checked).
 * fleet_model_finalize uploads every weight once; after it the weights are
 * read-only and shared by all runs, and the graph can no longer change.
 *
 * Run. fleet_model_run(model, inputs, outputs) checks the inputs against the
 * declared ones (count, dtype, device, shape; every FLEET_DIM_BATCH must take
 * the same value), finds or compiles the plan for these shapes — shape
 * inference, a memory plan that packs all activations of a run into one
 * arena, reusing space once a value is dead, and lowering to kernels — then
 * runs it on the calling thread's current stream of the model's device and
 * writes each output tensor (declared shape with the batch size filled in, the
 * declared dtype, any layout). Like every op it is asynchronous: it returns
 * once the work is queued; fleet_tensor_copy_to_host or a stream sync waits.
 *
 * One plan per (model, batch size), compiled once however many threads ask at
 * the same time (fleet_model_get_stats counts compiles). Each (plan, stream)
 * pair gets its own instance: an activation arena from that stream's memory
 * and, on cuda, the plan captured as a CUDA graph and replayed on later runs
 * (each stream its own executable graph, so concurrent replays never share
 * one). Threads that share a stream take turns on its instance. At most
 * FLEET_GRAPH_CACHE instances (default 64, 1..4096) are kept, least recently
 * used evicted first; an instance in use is never freed. A stream the caller
 * does not hold alone (the default stream, a stream shared because the pool
 * was full, another thread's bound stream) runs the plan without capturing
 * it: the same kernels, launched one by one. On cpu plans always run that way.
 * The graph holds the copies of the inputs in and the outputs out too, so a
 * replay is one launch; a run whose inputs or outputs are not contiguous
 * launches its kernels one by one. FLEET_MODEL_GRAPHS=0 turns graphs off.
 * The compiler also fuses a ReLU into the biased linear before it when
 * nothing else reads the linear's output (stats: fusions).
 *
 * Thread-safety: building and finalize are for one thread; after finalize,
 * run, stats and the accessors may be called from any thread at once.
 * fleet_model_destroy must not race with runs of the model. A model does not
 * survive fork (calls in a child return FLEET_ERR_FORKED). */
#ifndef FLEET_MODEL_H
#define FLEET_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "fleet/ops.h"
#include "fleet/tensor.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_model fleet_model;

/* Id of a value of a model's graph. */
typedef int32_t fleet_value;
#define FLEET_NO_VALUE ((fleet_value)-1) /* an absent optional operand (bias) */

/* The symbolic batch dimension in a declared shape. A reshape (or expand)
 * may also fold the batch into another dimension: FLEET_DIM_BATCH_TIMES(k)
 * is k times the batch ([B, S, D] -> [FLEET_DIM_BATCH_TIMES(S), D]). Inputs
 * hold FLEET_DIM_BATCH only. */
#define FLEET_DIM_BATCH ((int64_t)-1)
#define FLEET_DIM_BATCH_TIMES(k) (-(int64_t)(k))

/* Limits of one model. */
#define FLEET_MODEL_MAX_VALUES 65536
#define FLEET_MODEL_MAX_IO 64          /* inputs, and outputs, each   */
#define FLEET_MODEL_MAX_BATCH ((int64_t)1 << 24)

FLEET_API fleet_status fleet_model_create(fleet_device *device, fleet_model **out);
/* Frees the model, its plans, instances and weights (waits for the device
 * first). NULL is ignored. */
FLEET_API fleet_status fleet_model_destroy(fleet_model *model);

/* ---- building ----------------------------------------------------------- */

/* A named input (names unique among inputs and weights, 1..255 bytes). */
FLEET_API fleet_status fleet_model_input(fleet_model *model, const char *name, fleet_dtype dtype, int ndim,
                               const int64_t *shape, fleet_value *out);
/* A named weight (a constant) of fixed shape, data given before finalize. */
FLEET_API fleet_status fleet_model_weight(fleet_model *model, const char *name, fleet_dtype dtype, int ndim,
                                const int64_t *shape, fleet_value *out);
/* An unnamed constant (a scalar when ndim is 0) of any dtype, its data
 * copied now: numel(shape) * fleet_dtype_size(dtype) bytes at data. */
FLEET_API fleet_status fleet_model_constant(fleet_model *model, fleet_dtype dtype, int ndim,
                                            const int64_t *shape, const void *data,
                                            fleet_value *out);
/* Mark a value as an output (names unique among outputs). */
FLEET_API fleet_status fleet_model_output(fleet_model *model, const char *name, fleet_value value);
/* A value's dtype and shape as built (FLEET_DIM_BATCH where the batch goes):
 * for builders of larger graphs that need to know what an op gave. */
FLEET_API fleet_status fleet_model_value_info(const fleet_model *model, fleet_value value,
                                              fleet_dtype *dtype, int *ndim, int64_t *shape);

/* Ops; shapes as the fleet_* op of the same name (fleet/ops.h). */
FLEET_API fleet_status fleet_model_linear(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, fleet_value *out);
/* out = alpha * (a @ b); alpha 1 for a plain matmul. */
FLEET_API fleet_status fleet_model_matmul(fleet_model *model, fleet_value a, fleet_value b, float alpha,
                                fleet_value *out);
FLEET_API fleet_status fleet_model_add(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out);
FLEET_API fleet_status fleet_model_sub(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out);
FLEET_API fleet_status fleet_model_mul(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out);
FLEET_API fleet_status fleet_model_div(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out);
FLEET_API fleet_status fleet_model_relu(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_gelu(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_silu(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_tanh(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_sigmoid(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_pow(fleet_model *model, fleet_value a, fleet_value b, fleet_value *out);
FLEET_API fleet_status fleet_model_maximum(fleet_model *model, fleet_value a, fleet_value b,
                                           fleet_value *out);
FLEET_API fleet_status fleet_model_minimum(fleet_model *model, fleet_value a, fleet_value b,
                                           fleet_value *out);
/* Comparisons give a FLEET_DTYPE_BOOL value; where selects by one. */
FLEET_API fleet_status fleet_model_equal(fleet_model *model, fleet_value a, fleet_value b,
                                         fleet_value *out);
FLEET_API fleet_status fleet_model_less(fleet_model *model, fleet_value a, fleet_value b,
                                        fleet_value *out);
FLEET_API fleet_status fleet_model_less_equal(fleet_model *model, fleet_value a, fleet_value b,
                                              fleet_value *out);
FLEET_API fleet_status fleet_model_greater(fleet_model *model, fleet_value a, fleet_value b,
                                           fleet_value *out);
FLEET_API fleet_status fleet_model_greater_equal(fleet_model *model, fleet_value a, fleet_value b,
                                                 fleet_value *out);
FLEET_API fleet_status fleet_model_where(fleet_model *model, fleet_value cond, fleet_value a,
                                         fleet_value b, fleet_value *out);
FLEET_API fleet_status fleet_model_cast(fleet_model *model, fleet_value x, fleet_dtype dtype,
                                        fleet_value *out);
FLEET_API fleet_status fleet_model_gelu_tanh(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_erf(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_exp(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_log(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_sqrt(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_neg(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_abs(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_reciprocal(fleet_model *model, fleet_value x, fleet_value *out);
FLEET_API fleet_status fleet_model_leaky_relu(fleet_model *model, fleet_value x, float alpha,
                                              fleet_value *out);
FLEET_API fleet_status fleet_model_clip(fleet_model *model, fleet_value x, float lo, float hi,
                                        fleet_value *out);
FLEET_API fleet_status fleet_model_softmax(fleet_model *model, fleet_value x, int dim, fleet_value *out);
FLEET_API fleet_status fleet_model_log_softmax(fleet_model *model, fleet_value x, int dim,
                                               fleet_value *out);
/* Reductions along one dimension, as fleet_sum/fleet_mean/fleet_max. */
FLEET_API fleet_status fleet_model_sum(fleet_model *model, fleet_value x, int dim, int keepdim,
                                       fleet_value *out);
FLEET_API fleet_status fleet_model_mean(fleet_model *model, fleet_value x, int dim, int keepdim,
                                        fleet_value *out);
FLEET_API fleet_status fleet_model_max(fleet_model *model, fleet_value x, int dim, int keepdim,
                                       fleet_value *out);
/* gamma and beta may each be FLEET_NO_VALUE (no scale, no shift), as
 * fleet_layer_norm takes NULL. */
FLEET_API fleet_status fleet_model_layer_norm(fleet_model *model, fleet_value x, fleet_value gamma,
                                    fleet_value beta, float eps, fleet_value *out);
FLEET_API fleet_status fleet_model_conv1d(fleet_model *model, fleet_value x, fleet_value weight,
                                fleet_value bias, int64_t stride, int64_t padding,
                                int64_t dilation, fleet_value *out);
FLEET_API fleet_status fleet_model_conv2d(fleet_model *model, fleet_value x, fleet_value weight,
                                          fleet_value bias, const fleet_conv2d_params *params,
                                          fleet_value *out);
FLEET_API fleet_status fleet_model_max_pool2d(fleet_model *model, fleet_value x,
                                              const fleet_pool2d_params *params,
                                              fleet_value *out);
FLEET_API fleet_status fleet_model_avg_pool2d(fleet_model *model, fleet_value x,
                                              const fleet_pool2d_params *params,
                                              fleet_value *out);
/* Gathers: indices are an i32 or i64 value (an input, usually). */
FLEET_API fleet_status fleet_model_embedding(fleet_model *model, fleet_value weight,
                                             fleet_value indices, fleet_value *out);
FLEET_API fleet_status fleet_model_gather(fleet_model *model, fleet_value x, fleet_value indices,
                                          int axis, fleet_value *out);
/* ONNX's GatherND (batch_dims 0): indices [..., k] pick x[i0, .., ik-1]
 * (the rest of x's dimensions whole): out is indices' shape without its
 * last dimension, then x's past the first k. Negative indices count from
 * the end of their dimension. x's dimensions 1..k-1 must be numbers (the
 * first may be the batch's). Lowered to integer arithmetic and a gather. */
FLEET_API fleet_status fleet_model_gather_nd(fleet_model *model, fleet_value x,
                                             fleet_value indices, fleet_value *out);
/* Running sums along dim (a number of elements, not the batch's): out[i] =
 * x[0] + .. + x[i], or x[0] + .. + x[i-1] when exclusive (ONNX's CumSum,
 * forward); f32, i32 or i64. Lowered to log2(n) shifted adds. */
FLEET_API fleet_status fleet_model_cumsum(fleet_model *model, fleet_value x, int dim,
                                          int exclusive, fleet_value *out);
/* n >= 1 parts joined along dim (one copy each into out's slices). */
FLEET_API fleet_status fleet_model_concat(fleet_model *model, const fleet_value *inputs, int n,
                                          int dim, fleet_value *out);
/* Views: no copy where the layout allows one (a reshape of a permuted value
 * becomes a copy, planned like any other activation). A reshape's shape may
 * hold FLEET_DIM_BATCH where the batch dimension goes. */
FLEET_API fleet_status fleet_model_reshape(fleet_model *model, fleet_value x, int ndim, const int64_t *shape,
                                 fleet_value *out);
FLEET_API fleet_status fleet_model_transpose(fleet_model *model, fleet_value x, int dim0, int dim1,
                                   fleet_value *out);
FLEET_API fleet_status fleet_model_permute(fleet_model *model, fleet_value x, const int *dims,
                                 fleet_value *out);
/* Elements [start, end) of dim at step (> 0), as x[start:end:step]: start
 * and end clamp to the dimension, negative ones count from its end. Not
 * along a symbolic dimension unless the whole of it. */
FLEET_API fleet_status fleet_model_slice(fleet_model *model, fleet_value x, int dim, int64_t start,
                                         int64_t end, int64_t step, fleet_value *out);
/* x broadcast to shape (NumPy rules, both ways: the result is the
 * broadcast of x's shape and `shape`), as ONNX's Expand: a view. */
FLEET_API fleet_status fleet_model_expand(fleet_model *model, fleet_value x, int ndim,
                                          const int64_t *shape, fleet_value *out);
/* A 1-D value of `length` elements (a number, FLEET_DIM_BATCH or
 * FLEET_DIM_BATCH_TIMES(k)): start, start + delta, ... in dtype f32, i32
 * or i64 (integer start and delta exact below 2^53 in magnitude). What
 * ONNX's Range over the batch size becomes; a constant where the length
 * is a number is cheaper (fleet_model_constant). */
FLEET_API fleet_status fleet_model_range(fleet_model *model, fleet_dtype dtype, double start,
                                         double delta, int64_t length, fleet_value *out);
/* Scaled dot-product attention (fleet_attention without mask; scale <= 0
 * means 1/sqrt(D)), lowered to matmul, softmax, matmul. */
FLEET_API fleet_status fleet_model_attention(fleet_model *model, fleet_value q, fleet_value k, fleet_value v,
                                   float scale, fleet_value *out);
/* The same with an additive mask (FLEET_NO_VALUE: none) broadcast to the
 * scores [..., Lq, Lk], as fleet_attention's. */
FLEET_API fleet_status fleet_model_attention_masked(fleet_model *model, fleet_value q,
                                                    fleet_value k, fleet_value v,
                                                    fleet_value mask, float scale,
                                                    fleet_value *out);

/* ---- weights -------------------------------------------------------------- */

/* Copy a weight's data from host memory (bytes = its size); may be called
 * again before finalize to replace it. */
FLEET_API fleet_status fleet_model_set_weight(fleet_model *model, const char *name, const void *data,
                                    size_t bytes);
/* Set every weight whose name is in the safetensors file (dtype and shape
 * must match exactly); tensors of the file that the model does not declare
 * are ignored. *loaded (may be NULL) gets how many weights were set. A
 * malformed file is FLEET_ERR_INVALID_MODEL, an unreadable one FLEET_ERR_IO;
 * either way no weight is changed. */
FLEET_API fleet_status fleet_model_load_safetensors(fleet_model *model, const char *path, int *loaded);

/* Check the graph (at least one output, every weight has data), upload the
 * weights, and freeze the model. */
FLEET_API fleet_status fleet_model_finalize(fleet_model *model);

/* ---- running -------------------------------------------------------------- */

/* inputs in declaration order, n_inputs of them; outputs likewise. Thread-
 * safe; see the header comment. A failed check changes no output. */
FLEET_API fleet_status fleet_model_run(fleet_model *model, const fleet_tensor *const *inputs, int n_inputs,
                             fleet_tensor *const *outputs, int n_outputs);

/* The same run from host memory into host memory, in one call: tensors on
 * the model's device for every input and output, the inputs copied in, the
 * run, the outputs copied out (waiting for it), the tensors released. For
 * bindings (the Python package makes each run this one call) and programs
 * whose data lives on the host. inputs[i] holds input i C-contiguous in its
 * declared dtype and shape with the batch dimension = batch (input_bytes[i]
 * must be exactly that size, else FLEET_ERR_SHAPE_MISMATCH naming the
 * shape); outputs[i] receives output i likewise (output_bytes[i] its size
 * for batch). A model without a batch dimension takes batch 1. Errors as
 * fleet_model_run's; a check that fails changes no output, while a copy out
 * that fails (a device error) may leave earlier outputs written. Thread-safe
 * as fleet_model_run.
 *
 *     float x[4 * 256], y[4 * 256];               // batch 4 of the MLP above
 *     fleet_model_run_host(mlp, 4, (const void *[]){x}, (size_t[]){sizeof x}, 1,
 *                          (void *[]){y}, (size_t[]){sizeof y}, 1);
 */
FLEET_API fleet_status fleet_model_run_host(fleet_model *model, int64_t batch,
                                            const void *const *inputs, const size_t *input_bytes,
                                            int n_inputs, void *const *outputs,
                                            const size_t *output_bytes, int n_outputs);

/* Facts about a model. */
FLEET_API int fleet_model_input_count(const fleet_model *model);
FLEET_API int fleet_model_output_count(const fleet_model *model);
/* Shape of input/output i for a batch size (FLEET_DIM_BATCH filled in):
 * writes *ndim and shape[0..ndim). */
FLEET_API fleet_status fleet_model_input_shape(const fleet_model *model, int i, int64_t batch, int *ndim,
                                     int64_t *shape);
FLEET_API fleet_status fleet_model_output_shape(const fleet_model *model, int i, int64_t batch, int *ndim,
                                      int64_t *shape);

/* Input/output i as declared: its name (valid while the model lives),
 * dtype and shape with FLEET_DIM_BATCH where the batch goes. */
FLEET_API fleet_status fleet_model_input_info(const fleet_model *model, int i, const char **name,
                                              fleet_dtype *dtype, int *ndim, int64_t *shape);
FLEET_API fleet_status fleet_model_output_info(const fleet_model *model, int i, const char **name,
                                               fleet_dtype *dtype, int *ndim, int64_t *shape);

typedef struct fleet_model_stats {
    uint64_t runs;            /* successful fleet_model_run calls            */
    uint64_t compiles;        /* plans compiled (one per batch size)         */
    uint64_t plans;           /* plans alive                                 */
    uint64_t instances_created; /* (plan, stream) instances built            */
    uint64_t graph_captures;  /* of those runs, CUDA graphs captured         */
    uint64_t graph_replays;   /* runs that replayed a captured graph         */
    uint64_t eager_runs;      /* runs that launched the plan's ops one by one */
    uint64_t evictions;       /* instances of this model evicted from the cache */
    uint64_t fusions;         /* ops fused into another's kernel, over all plans
                               * (a ReLU into its biased linear's GEMM)      */
    size_t arena_bytes_max;   /* largest activation arena of its plans       */
    size_t weight_bytes;      /* device memory of the weights                */
    /* An imported model's (fleet/onnx.h): nodes computed at load (constant
     * folding), and nodes fused into another at load (a MatMul's bias Add
     * into one linear). 0 for a built one. */
    uint64_t load_folded, load_fused;
} fleet_model_stats;
FLEET_API fleet_status fleet_model_get_stats(const fleet_model *model, fleet_model_stats *out);

/* ---- ready-made models ---------------------------------------------------- *
 * Built and left unfinalized (set or load the weights, then finalize). Input
 * "x", output "y", f32; weight names as PyTorch's state_dict would have them.
 */

/* MLP: widths[0] -> widths[1] -> ... -> widths[n-1], ReLU between layers
 * (none after the last). x [B, widths[0]]. Weights "layers.<i>.weight"
 * [widths[i+1], widths[i]] and "layers.<i>.bias". n >= 2. */
FLEET_API fleet_status fleet_model_build_mlp(fleet_device *device, const int64_t *widths, int n,
                                   fleet_model **out);
/* Conv1d net: channels[0] -> ... -> channels[n-1], kernel size k, padding
 * k/2 (k odd: length kept), ReLU between layers. x [B, channels[0], length].
 * Weights "convs.<i>.weight" [c[i+1], c[i], k] and "convs.<i>.bias". */
FLEET_API fleet_status fleet_model_build_conv1d_net(fleet_device *device, const int64_t *channels, int n,
                                          int64_t kernel, int64_t length, fleet_model **out);
/* Transformer encoder block, post-norm, as torch.nn.TransformerEncoderLayer
 * (batch_first, activation gelu, no dropout) with its in_proj split in three:
 * x [B, seq, d_model];
 *   a = x + out_proj(attention(q_proj(x), k_proj(x), v_proj(x)) by heads)
 *   h = norm1(a);  y = norm2(h + linear2(gelu(linear1(h))))
 * Weights "self_attn.{q,k,v,out}_proj.{weight,bias}" [d, d] / [d],
 * "linear1.weight" [ff, d], "linear1.bias", "linear2.weight" [d, ff],
 * "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"
 * [d]; layer-norm eps 1e-5. d_model divisible by heads. */
FLEET_API fleet_status fleet_model_build_encoder_block(fleet_device *device, int64_t seq, int64_t d_model,
                                             int64_t heads, int64_t ff, fleet_model **out);

/* The same block added to a model being built, to stack blocks inside a
 * larger graph: x [B, seq, d_model] -> *out of the same shape; its weights
 * are the names above after `prefix` ("" or, say, "layers.3."); mask is
 * FLEET_NO_VALUE or an additive mask broadcast to the scores
 * [B, heads, seq, seq] (a padding mask: [B, 1, 1, seq] of 0 and -inf); eps
 * is the layer norms'. */
typedef struct fleet_encoder_params {
    int64_t seq, d_model, heads, ff;
    float eps;
} fleet_encoder_params;
FLEET_API fleet_status fleet_model_add_encoder_block(fleet_model *model, const char *prefix,
                                                     fleet_value x, fleet_value mask,
                                                     const fleet_encoder_params *params,
                                                     fleet_value *out);

#ifdef __cplusplus
}
#endif
#endif /* FLEET_MODEL_H */
