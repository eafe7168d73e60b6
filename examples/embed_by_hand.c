/* examples/embed_by_hand.c — sentence embeddings with all-MiniLM-L6-v2,
 * the model built by hand with fleet's builder API (fleet/model.h) and its
 * weights read from the Hugging Face model.safetensors, by their names.
 *
 *     embed_by_hand path/to/model.safetensors [--threads N] [--out FILE] [IDS...]
 *
 * The model is BERT (6 layers, hidden 384, 12 heads, feed-forward 1536,
 * GELU, layer norm eps 1e-12, post-norm) followed by what sentence-
 * transformers adds: the mean of the token vectors over the attention mask,
 * then L2 normalisation. All of it is one graph: inputs input_ids and
 * attention_mask (i64 [batch, seq]), output embedding (f32 [batch, 384]).
 * The sequence length is fixed when the graph is built (the sentences'
 * padded length); the batch is free. Then N threads run the one model at
 * once (embed.h). */
#define _POSIX_C_SOURCE 200809L
#include "embed.h"

#define LAYERS 6
#define HEADS 12
#define FF 1536
#define EPS 1e-12f
#define B FLEET_DIM_BATCH

/* Every builder call returns a status; the first failure ends the build and
 * fleet_last_error() names the op and why. */
#define TRY(call)                                                                        \
    do {                                                                                 \
        fleet_status st_ = (call);                                                       \
        if (st_ != FLEET_OK)                                                             \
            return st_;                                                                  \
    } while (0)

/* A weight of the file: f32, of the shape given. */
static fleet_status weight(fleet_model *m, const char *prefix, const char *leaf, int ndim,
                           const int64_t *shape, fleet_value *out)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, leaf);
    return fleet_model_weight(m, name, FLEET_DTYPE_F32, ndim, shape, out);
}

/* y = x W^T + b, as torch.nn.Linear: prefix.weight [out, in], prefix.bias [out]. */
static fleet_status linear(fleet_model *m, const char *prefix, fleet_value x, int64_t in,
                           int64_t out, fleet_value *y)
{
    fleet_value w, b;
    TRY(weight(m, prefix, ".weight", 2, (int64_t[]){out, in}, &w));
    TRY(weight(m, prefix, ".bias", 1, (int64_t[]){out}, &b));
    return fleet_model_linear(m, x, w, b, y);
}

static fleet_status layer_norm(fleet_model *m, const char *prefix, fleet_value x, fleet_value *y)
{
    fleet_value g, b;
    TRY(weight(m, prefix, ".weight", 1, (int64_t[]){EMBED_DIM}, &g));
    TRY(weight(m, prefix, ".bias", 1, (int64_t[]){EMBED_DIM}, &b));
    return fleet_model_layer_norm(m, x, g, b, EPS, y);
}

/* [B, S, 384] -> [B, 12, S, 32]: a view, no copy. */
static fleet_status split_heads(fleet_model *m, fleet_value x, int64_t seq, fleet_value *y)
{
    fleet_value r;
    TRY(fleet_model_reshape(m, x, 4, (int64_t[]){B, seq, HEADS, EMBED_DIM / HEADS}, &r));
    return fleet_model_permute(m, r, (int[]){0, 2, 1, 3}, y);
}

/* One BertLayer: self-attention, then the feed-forward, each added to its
 * input and layer-normed. mask_bias [B, 1, 1, S] is added to the scores. */
static fleet_status bert_layer(fleet_model *m, int layer, fleet_value x, fleet_value mask_bias,
                               int64_t seq, fleet_value *y)
{
    char p[64], n[128];
    snprintf(p, sizeof p, "encoder.layer.%d.", layer);
#define NAME(leaf) (snprintf(n, sizeof n, "%s%s", p, leaf), n)
    fleet_value q, k, v, qh, kh, vh, ctx, ctx_t, merged, attn, a, a_norm, h, g, f, r;
    TRY(linear(m, NAME("attention.self.query"), x, EMBED_DIM, EMBED_DIM, &q));
    TRY(linear(m, NAME("attention.self.key"), x, EMBED_DIM, EMBED_DIM, &k));
    TRY(linear(m, NAME("attention.self.value"), x, EMBED_DIM, EMBED_DIM, &v));
    TRY(split_heads(m, q, seq, &qh));
    TRY(split_heads(m, k, seq, &kh));
    TRY(split_heads(m, v, seq, &vh));
    /* softmax(q k^T / sqrt(32) + mask_bias) v, per head: [B, 12, S, 32] */
    TRY(fleet_model_attention_masked(m, qh, kh, vh, mask_bias, 0.0f, &ctx));
    TRY(fleet_model_permute(m, ctx, (int[]){0, 2, 1, 3}, &ctx_t));
    TRY(fleet_model_reshape(m, ctx_t, 3, (int64_t[]){B, seq, EMBED_DIM}, &merged));
    TRY(linear(m, NAME("attention.output.dense"), merged, EMBED_DIM, EMBED_DIM, &attn));
    TRY(fleet_model_add(m, x, attn, &a));
    TRY(layer_norm(m, NAME("attention.output.LayerNorm"), a, &a_norm));
    TRY(linear(m, NAME("intermediate.dense"), a_norm, EMBED_DIM, FF, &h));
    TRY(fleet_model_gelu(m, h, &g)); /* the exact (erf) GELU, as BERT's "gelu" */
    TRY(linear(m, NAME("output.dense"), g, FF, EMBED_DIM, &f));
    TRY(fleet_model_add(m, a_norm, f, &r));
    return layer_norm(m, NAME("output.LayerNorm"), r, y);
#undef NAME
}

/* A scalar f32 constant. */
static fleet_status scalar(fleet_model *m, float value, fleet_value *out)
{
    return fleet_model_constant(m, FLEET_DTYPE_F32, 0, NULL, &value, out);
}

/* The whole graph, for sentences of seq tokens (padding included). */
static fleet_status build(fleet_model *m, int64_t seq)
{
    const int64_t io[2] = {B, seq};
    fleet_value ids, mask, word_w, pos_w, type_w, word, pos, type, sum, x;
    TRY(fleet_model_input(m, "input_ids", FLEET_DTYPE_I64, 2, io, &ids));
    TRY(fleet_model_input(m, "attention_mask", FLEET_DTYPE_I64, 2, io, &mask));

    /* Embeddings: word[id] + position[t] + token_type[0] (one segment, so
     * every token type is 0), then layer norm. */
    TRY(weight(m, "embeddings.word_embeddings", ".weight", 2,
               (int64_t[]){EMBED_VOCAB, EMBED_DIM}, &word_w));
    TRY(weight(m, "embeddings.position_embeddings", ".weight", 2,
               (int64_t[]){EMBED_MAX_TOKENS, EMBED_DIM}, &pos_w));
    TRY(weight(m, "embeddings.token_type_embeddings", ".weight", 2,
               (int64_t[]){2, EMBED_DIM}, &type_w));
    TRY(fleet_model_embedding(m, word_w, ids, &word));            /* [B, S, 384] */
    TRY(fleet_model_slice(m, pos_w, 0, 0, seq, 1, &pos));         /* [S, 384]    */
    TRY(fleet_model_slice(m, type_w, 0, 0, 1, 1, &type));         /* [1, 384]    */
    TRY(fleet_model_add(m, word, pos, &sum));
    TRY(fleet_model_add(m, sum, type, &sum));
    TRY(layer_norm(m, "embeddings.LayerNorm", sum, &x));

    /* The padding mask as an additive bias on the attention scores: 0 where
     * a token may be attended to, -inf on padding; [B, 1, 1, S] broadcasts
     * over heads and query positions. */
    fleet_value maskf, zero, neg_inf, is_pad, bias2, bias;
    TRY(fleet_model_cast(m, mask, FLEET_DTYPE_F32, &maskf)); /* [B, S] of 1 and 0 */
    TRY(scalar(m, 0.0f, &zero));
    TRY(scalar(m, -INFINITY, &neg_inf));
    TRY(fleet_model_equal(m, maskf, zero, &is_pad));
    TRY(fleet_model_where(m, is_pad, neg_inf, zero, &bias2));
    TRY(fleet_model_reshape(m, bias2, 4, (int64_t[]){B, 1, 1, seq}, &bias));

    for (int l = 0; l < LAYERS; l++)
        TRY(bert_layer(m, l, x, bias, seq, &x));

    /* Mean pooling over the real tokens: sum(x * mask) / max(sum(mask), 1e-9). */
    fleet_value mask3, masked, summed, count, tiny, count_c, mean;
    TRY(fleet_model_reshape(m, maskf, 3, (int64_t[]){B, seq, 1}, &mask3));
    TRY(fleet_model_mul(m, x, mask3, &masked));
    TRY(fleet_model_sum(m, masked, 1, 0, &summed));              /* [B, 384] */
    TRY(fleet_model_sum(m, maskf, 1, 1, &count));                /* [B, 1]   */
    TRY(scalar(m, 1e-9f, &tiny));
    TRY(fleet_model_maximum(m, count, tiny, &count_c));
    TRY(fleet_model_div(m, summed, count_c, &mean));

    /* L2 normalisation: mean / max(|mean|, 1e-12), as torch's F.normalize. */
    fleet_value sq, sq_sum, len, eps, len_c, embedding;
    TRY(fleet_model_mul(m, mean, mean, &sq));
    TRY(fleet_model_sum(m, sq, 1, 1, &sq_sum));                  /* [B, 1]   */
    TRY(fleet_model_sqrt(m, sq_sum, &len));
    TRY(scalar(m, 1e-12f, &eps));
    TRY(fleet_model_maximum(m, len, eps, &len_c));
    TRY(fleet_model_div(m, mean, len_c, &embedding));
    return fleet_model_output(m, "embedding", embedding);
}

/* Run by every thread at once: the batch in, the embeddings out. */
static fleet_status embed(fleet_model *m, const embed_batch *b, float *out)
{
    fleet_device *dev;
    fleet_tensor *ids = NULL, *mask = NULL, *emb = NULL;
    const int64_t io[2] = {b->n, b->seq}, os[2] = {b->n, EMBED_DIM};
    size_t io_bytes = sizeof(int64_t) * (size_t)(b->n * b->seq);
    fleet_status st;
    if ((st = fleet_device_default(&dev)) != FLEET_OK ||
        (st = fleet_tensor_create(dev, FLEET_DTYPE_I64, 2, io, &ids)) != FLEET_OK ||
        (st = fleet_tensor_create(dev, FLEET_DTYPE_I64, 2, io, &mask)) != FLEET_OK ||
        (st = fleet_tensor_create(dev, FLEET_DTYPE_F32, 2, os, &emb)) != FLEET_OK ||
        (st = fleet_tensor_copy_from_host(ids, b->ids, io_bytes)) != FLEET_OK ||
        (st = fleet_tensor_copy_from_host(mask, b->mask, io_bytes)) != FLEET_OK ||
        (st = fleet_model_run(m, (const fleet_tensor *[]){ids, mask}, 2,
                              (fleet_tensor *[]){emb}, 1)) != FLEET_OK)
        goto out;
    /* the run is queued on this thread's stream; the copy waits for it */
    st = fleet_tensor_copy_to_host(emb, out, sizeof(float) * (size_t)(b->n * EMBED_DIM));
out:
    /* (fleet_tensor_release(NULL) is an error that would replace the reason) */
    if (ids)
        fleet_tensor_release(ids);
    if (mask)
        fleet_tensor_release(mask);
    if (emb)
        fleet_tensor_release(emb);
    return st;
}

int main(int argc, char **argv)
{
    static embed_options o; /* large: not on the stack */
    if (embed_parse_args(argc, argv, "MODEL.safetensors", &o) != 0)
        return 2;
    fleet_device *dev;
    fleet_model *m = NULL;
    fleet_status st;
    int loaded = 0, rc = 1;
    if ((st = fleet_device_default(&dev)) != FLEET_OK)
        return embed_fail("no device", st);
    if ((st = fleet_model_create(dev, &m)) != FLEET_OK) {
        rc = embed_fail("fleet_model_create", st);
        goto out;
    }
    if ((st = build(m, o.batch.seq)) != FLEET_OK) {
        rc = embed_fail("building the model", st);
        goto out;
    }
    /* every weight declared above is matched by name, dtype and shape; the
     * file's other tensors (embeddings.position_ids, the pooler) are ignored */
    if ((st = fleet_model_load_safetensors(m, o.model_path, &loaded)) != FLEET_OK) {
        rc = embed_fail(o.model_path, st);
        goto out;
    }
    if ((st = fleet_model_finalize(m)) != FLEET_OK) { /* says which weight is missing */
        rc = embed_fail("fleet_model_finalize", st);
        goto out;
    }
    printf("all-MiniLM-L6-v2 built by hand on %s: %d weights from %s; %lld sentence(s) "
           "padded to %lld tokens\n", fleet_device_name(dev), loaded, o.model_path,
           (long long)o.batch.n, (long long)o.batch.seq);
    rc = embed_main(&o, m, embed);
out:
    fleet_model_destroy(m); /* NULL is ignored */
    fleet_shutdown();
    return rc;
}
