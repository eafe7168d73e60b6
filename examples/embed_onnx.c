/* examples/embed_onnx.c — the same sentence embeddings as embed_by_hand.c,
 * from all-MiniLM-L6-v2 exported to ONNX (`make onnx-models` exports it:
 * bench/onnx_models.py) and loaded with fleet_model_load_onnx.
 *
 *     embed_onnx path/to/model.onnx [--threads N] [--out FILE] [IDS...]
 *
 * The export is BertModel alone: inputs input_ids, attention_mask and
 * token_type_ids (i64 [batch, sequence]), output last_hidden_state (f32
 * [batch, sequence, 384]). The sequence dimension is bound to the
 * sentences' padded length at load; the batch stays free. What
 * sentence-transformers adds after the model — the mean over the attention
 * mask, then L2 normalisation — is done here in plain C on the host, after
 * the run (embed_by_hand.c builds it into the graph instead). Then N
 * threads run the one model at once (embed.h). */
#define _POSIX_C_SOURCE 200809L
#include "embed.h"
#include "fleet/onnx.h"

/* Model input i's name and dtype (fleet_model_input_info wants every
 * field). NULL when i is not an input. */
static const char *input_name(const fleet_model *m, int i, fleet_dtype *dtype)
{
    const char *name;
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    return fleet_model_input_info(m, i, &name, dtype, &ndim, shape) == FLEET_OK ? name : NULL;
}

/* Which of the batch's arrays feeds the model input of this name
 * (token_type_ids: zeros, one segment); NULL for a name it does not know. */
static const int64_t *input_data(const char *name, const embed_batch *b, const int64_t *zeros)
{
    if (name == NULL)
        return NULL;
    if (strcmp(name, "input_ids") == 0)
        return b->ids;
    if (strcmp(name, "attention_mask") == 0)
        return b->mask;
    if (strcmp(name, "token_type_ids") == 0)
        return zeros;
    return NULL;
}

/* last_hidden_state [n, seq, 384] -> out [n, 384]: the mean over the
 * tokens whose mask is 1, then divided by its length (sentence-transformers'
 * Pooling + Normalize: clamps 1e-9 and 1e-12 as they do). */
static void pool_and_normalize(const float *hidden, const embed_batch *b, float *out)
{
    for (int64_t i = 0; i < b->n; i++) {
        double sum[EMBED_DIM] = {0}, count = 0, norm = 0;
        for (int64_t t = 0; t < b->seq; t++) {
            if (b->mask[i * b->seq + t] == 0)
                continue;
            const float *h = hidden + (i * b->seq + t) * EMBED_DIM;
            for (int d = 0; d < EMBED_DIM; d++)
                sum[d] += h[d];
            count += 1;
        }
        for (int d = 0; d < EMBED_DIM; d++) {
            sum[d] /= fmax(count, 1e-9);
            norm += sum[d] * sum[d];
        }
        norm = fmax(sqrt(norm), 1e-12);
        for (int d = 0; d < EMBED_DIM; d++)
            out[i * EMBED_DIM + d] = (float)(sum[d] / norm);
    }
}

/* Run by every thread at once: the batch in, the embeddings out. */
static fleet_status embed(fleet_model *m, const embed_batch *b, float *out)
{
    enum { N_IN = 3 };
    fleet_device *dev;
    fleet_tensor *in[N_IN] = {NULL}, *hidden = NULL;
    const int64_t io[2] = {b->n, b->seq}, hs[3] = {b->n, b->seq, EMBED_DIM};
    size_t io_bytes = sizeof(int64_t) * (size_t)(b->n * b->seq);
    size_t hidden_bytes = sizeof(float) * (size_t)(b->n * b->seq * EMBED_DIM);
    int64_t *zeros = calloc((size_t)(b->n * b->seq), sizeof(int64_t));
    float *h = malloc(hidden_bytes);
    int n_in = fleet_model_input_count(m); /* 1..3, each known: check_io() */
    fleet_dtype dt;
    fleet_status st = FLEET_ERR_OUT_OF_MEMORY;
    if (zeros == NULL || h == NULL || (st = fleet_device_default(&dev)) != FLEET_OK)
        goto out;
    for (int i = 0; i < n_in; i++) {
        const int64_t *data = input_data(input_name(m, i, &dt), b, zeros);
        if ((st = fleet_tensor_create(dev, FLEET_DTYPE_I64, 2, io, &in[i])) != FLEET_OK ||
            (st = fleet_tensor_copy_from_host(in[i], data, io_bytes)) != FLEET_OK)
            goto out;
    }
    if ((st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 3, hs, &hidden)) != FLEET_OK ||
        (st = fleet_model_run(m, (const fleet_tensor *const *)in, n_in, &hidden, 1)) != FLEET_OK ||
        (st = fleet_tensor_copy_to_host(hidden, h, hidden_bytes)) != FLEET_OK)
        goto out;
    pool_and_normalize(h, b, out);
out:
    /* (fleet_tensor_release(NULL) is an error that would replace the reason) */
    for (int i = 0; i < N_IN; i++)
        if (in[i])
            fleet_tensor_release(in[i]);
    if (hidden)
        fleet_tensor_release(hidden);
    free(zeros);
    free(h);
    return st;
}

/* The export must have the inputs embed() feeds and last_hidden_state's
 * shape: say what differs rather than fail inside a thread. */
static int check_io(fleet_model *m, const embed_batch *b)
{
    int n_in = fleet_model_input_count(m);
    for (int i = 0; i < n_in && i < 3; i++) {
        fleet_dtype dt;
        const char *name = input_name(m, i, &dt);
        if (input_data(name, b, b->ids) == NULL || dt != FLEET_DTYPE_I64) {
            fprintf(stderr, "model input %d '%s': expected input_ids, attention_mask or "
                            "token_type_ids, int64\n", i, name ? name : "?");
            return -1;
        }
    }
    int ndim;
    int64_t shape[FLEET_MAX_DIMS];
    if (n_in < 1 || n_in > 3 || fleet_model_output_count(m) != 1 ||
        fleet_model_output_shape(m, 0, b->n, &ndim, shape) != FLEET_OK || ndim != 3 ||
        shape[1] != b->seq || shape[2] != EMBED_DIM) {
        fprintf(stderr, "expected 1 to 3 inputs and one output [batch, %lld, %d] "
                        "(last_hidden_state)\n", (long long)b->seq, EMBED_DIM);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static embed_options o; /* large: not on the stack */
    if (embed_parse_args(argc, argv, "MODEL.onnx", &o) != 0)
        return 2;
    fleet_device *dev;
    fleet_model *m = NULL;
    fleet_status st;
    int rc = 1;
    if ((st = fleet_device_default(&dev)) != FLEET_OK)
        return embed_fail("no device", st);
    /* the exporter named the dynamic dimensions "batch" and "sequence" */
    fleet_onnx_options opt = FLEET_ONNX_OPTIONS_INIT;
    const char *dim_names[] = {"sequence"};
    const int64_t dim_values[] = {o.batch.seq};
    opt.dim_names = dim_names, opt.dim_values = dim_values, opt.n_dims = 1;
    if ((st = fleet_model_load_onnx(dev, o.model_path, &opt, &m)) != FLEET_OK) {
        rc = embed_fail(o.model_path, st);
        goto out;
    }
    if (check_io(m, &o.batch) != 0)
        goto out;
    printf("all-MiniLM-L6-v2 loaded from %s on %s; %lld sentence(s) padded to %lld tokens\n",
           o.model_path, fleet_device_name(dev), (long long)o.batch.n, (long long)o.batch.seq);
    rc = embed_main(&o, m, embed);
out:
    fleet_model_destroy(m); /* a loaded model is finalized; NULL is ignored */
    fleet_shutdown();
    return rc;
}
