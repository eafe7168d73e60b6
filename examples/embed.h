/* examples/embed.h — what the two sentence-embedding examples share: the
 * sentences (as token ids), the command line, N threads embedding them with
 * one shared model, and the printing. Each example brings its model:
 * embed_by_hand.c builds all-MiniLM-L6-v2 with the builder API, embed_onnx.c
 * loads its ONNX export; both hand embed_main() a function that embeds a
 * batch of sentences, which every thread calls at once.
 *
 * Token ids. A tokenizer is out of scope: the ids are those of the model's
 * WordPiece vocabulary (vocab.txt beside model.safetensors: id = line number
 * - 1), as the Hugging Face tokenizer gives them, [CLS] = 101 first and
 * [SEP] = 102 last:
 *
 *     from transformers import AutoTokenizer
 *     t = AutoTokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
 *     t("hello world")["input_ids"]             # [101, 7592, 2088, 102]
 *
 * Sentences of different lengths are padded with id 0 to the longest one;
 * the attention mask is 1 on real tokens, 0 on padding. */
#ifndef FLEET_EXAMPLES_EMBED_H
#define FLEET_EXAMPLES_EMBED_H

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

#define EMBED_DIM 384        /* all-MiniLM-L6-v2's hidden size: the embedding's */
#define EMBED_VOCAB 30522    /* its vocabulary                               */
#define EMBED_MAX_TOKENS 512 /* its position table                           */
#define EMBED_MAX_SENTENCES 64
#define EMBED_MAX_THREADS 64

/* Used when no ids are given on the command line. */
static const struct {
    const char *text;
    int64_t ids[8];
    int n;
} embed_builtin[] = {
    {"hello world", {101, 7592, 2088, 102}, 4},
    {"a cat sits on the mat", {101, 1037, 4937, 7719, 2006, 1996, 13523, 102}, 8},
    {"many threads share one model", {101, 2116, 16457, 3745, 2028, 2944, 102}, 7},
};

/* The sentences, padded: ids and mask are [n, seq], row-major. */
typedef struct embed_batch {
    int64_t n, seq;
    int64_t len[EMBED_MAX_SENTENCES]; /* tokens of each, padding excluded */
    int64_t ids[EMBED_MAX_SENTENCES * EMBED_MAX_TOKENS];
    int64_t mask[EMBED_MAX_SENTENCES * EMBED_MAX_TOKENS];
    const char *text[EMBED_MAX_SENTENCES]; /* NULL for ids from the command line */
} embed_batch;

typedef struct embed_options {
    const char *model_path;
    const char *out_path; /* --out: every value, one line per sentence */
    int threads;
    embed_batch batch;
} embed_options;

/* Embeds b's sentences with the model: out [b->n, EMBED_DIM]. Called by
 * every thread at once; returns a status, the reason in fleet_last_error(). */
typedef fleet_status (*embed_fn)(fleet_model *model, const embed_batch *b, float *out);

/* One sentence "101,7592,2088,102" into row i of b (padded later). */
static int embed_parse_ids(const char *arg, embed_batch *b, int64_t i)
{
    const char *p = arg;
    int64_t n = 0;
    while (*p) {
        char *end;
        errno = 0;
        long long id = strtoll(p, &end, 10);
        if (end == p || errno || id < 0 || id >= EMBED_VOCAB || n == EMBED_MAX_TOKENS ||
            (*end && *end != ',')) {
            fprintf(stderr, "sentence '%s': expected up to %d token ids 0..%d separated by "
                            "commas, like 101,7592,2088,102\n", arg, EMBED_MAX_TOKENS,
                    EMBED_VOCAB - 1);
            return -1;
        }
        b->ids[i * EMBED_MAX_TOKENS + n++] = id;
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        fprintf(stderr, "an empty sentence\n");
        return -1;
    }
    b->len[i] = n;
    return 0;
}

/* Rows of EMBED_MAX_TOKENS -> rows of seq, the longest length (in place:
 * row i moves down, never over a row still to move): ids padded with 0,
 * mask 1 on the tokens and 0 on the padding. */
static void embed_pad(embed_batch *b)
{
    b->seq = 0;
    for (int64_t i = 0; i < b->n; i++)
        b->seq = b->len[i] > b->seq ? b->len[i] : b->seq;
    for (int64_t i = 0; i < b->n; i++)
        for (int64_t t = 0; t < b->seq; t++) {
            b->ids[i * b->seq + t] = t < b->len[i] ? b->ids[i * EMBED_MAX_TOKENS + t] : 0;
            b->mask[i * b->seq + t] = t < b->len[i];
        }
}

/* `prog MODEL [--threads N] [--out FILE] [IDS...]`; 0, or -1 after printing
 * why. */
static int embed_parse_args(int argc, char **argv, const char *model_kind, embed_options *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--threads") == 0 || strcmp(a, "--out") == 0) && i + 1 == argc) {
            fprintf(stderr, "%s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--threads") == 0) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > EMBED_MAX_THREADS) {
                fprintf(stderr, "--threads takes 1..%d\n", EMBED_MAX_THREADS);
                return -1;
            }
            o->threads = (int)v;
        } else if (strcmp(a, "--out") == 0) {
            o->out_path = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "unknown option '%s'\n", a);
            return -1;
        } else if (o->model_path == NULL) {
            o->model_path = a;
        } else if (o->batch.n == EMBED_MAX_SENTENCES) {
            fprintf(stderr, "at most %d sentences\n", EMBED_MAX_SENTENCES);
            return -1;
        } else if (embed_parse_ids(a, &o->batch, o->batch.n++) != 0) {
            return -1;
        }
    }
    if (o->model_path == NULL) {
        fprintf(stderr, "usage: %s %s [--threads N] [--out FILE] [IDS...]\n"
                        "  IDS: one sentence's token ids, comma-separated "
                        "(default: three built-in sentences)\n", argv[0], model_kind);
        return -1;
    }
    if (o->batch.n == 0) {
        int n = (int)(sizeof embed_builtin / sizeof embed_builtin[0]);
        for (int i = 0; i < n; i++) {
            o->batch.text[i] = embed_builtin[i].text;
            memcpy(&o->batch.ids[i * EMBED_MAX_TOKENS], embed_builtin[i].ids,
                   sizeof(int64_t) * (size_t)embed_builtin[i].n);
            o->batch.len[i] = embed_builtin[i].n;
        }
        o->batch.n = n;
    }
    embed_pad(&o->batch);
    return 0;
}

typedef struct embed_thread {
    pthread_t handle;
    embed_fn fn;
    fleet_model *model;
    const embed_batch *batch;
    float *out; /* [n, EMBED_DIM] */
    fleet_status status;
    char error[512];
} embed_thread;

static void *embed_thread_main(void *arg)
{
    embed_thread *t = arg;
    t->status = t->fn(t->model, t->batch, t->out);
    if (t->status != FLEET_OK) /* the reason is this thread's: keep it */
        snprintf(t->error, sizeof t->error, "%s", fleet_last_error());
    return NULL;
}

/* Every value of out, one sentence a line, to path. */
static int embed_write(const char *path, const float *out, int64_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        for (int d = 0; d < EMBED_DIM; d++)
            fprintf(f, "%.9g%c", (double)out[i * EMBED_DIM + d], d + 1 < EMBED_DIM ? ' ' : '\n');
    if (fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* o->threads threads each embed every sentence with the one model at once;
 * then thread 0's embeddings are printed (and written to --out) and the
 * others compared with them. 0 on success, 1 after printing why not. */
static int embed_main(const embed_options *o, fleet_model *model, embed_fn fn)
{
    const embed_batch *b = &o->batch;
    size_t per_thread = (size_t)b->n * EMBED_DIM;
    float *out = calloc((size_t)o->threads * per_thread, sizeof(float));
    embed_thread *t = calloc((size_t)o->threads, sizeof *t);
    int started = 0, rc = 1;
    if (out == NULL || t == NULL) {
        fprintf(stderr, "out of host memory\n");
        goto done;
    }
    for (; started < o->threads; started++) {
        t[started] = (embed_thread){.fn = fn, .model = model, .batch = b,
                                    .out = out + (size_t)started * per_thread};
        if (pthread_create(&t[started].handle, NULL, embed_thread_main, &t[started]) != 0) {
            fprintf(stderr, "cannot start thread %d\n", started);
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(t[i].handle, NULL);
    if (started < o->threads)
        goto done;
    for (int i = 0; i < o->threads; i++)
        if (t[i].status != FLEET_OK) {
            fprintf(stderr, "thread %d: %s: %s\n", i, fleet_status_str(t[i].status), t[i].error);
            goto done;
        }

    for (int64_t i = 0; i < b->n; i++) {
        const float *e = out + i * EMBED_DIM;
        double norm = 0;
        for (int d = 0; d < EMBED_DIM; d++)
            norm += (double)e[d] * e[d];
        printf("sentence %lld \"%s\" (%lld tokens): [%.5f %.5f %.5f %.5f ... %.5f] norm %.6f\n",
               (long long)i, b->text[i] ? b->text[i] : "ids given", (long long)b->len[i],
               (double)e[0], (double)e[1], (double)e[2], (double)e[3],
               (double)e[EMBED_DIM - 1], sqrt(norm));
    }
    double diff = 0;
    for (size_t k = per_thread; k < (size_t)o->threads * per_thread; k++)
        diff = fmax(diff, fabs((double)out[k] - out[k % per_thread]));
    printf("%d thread(s) shared the model; largest difference from thread 0: %.3g\n",
           o->threads, diff);
    if (o->out_path != NULL && embed_write(o->out_path, out, b->n) != 0)
        goto done;
    rc = 0;
done:
    free(t);
    free(out);
    return rc;
}

/* Prints what failed and why; returns 1 (the exit status). */
static int embed_fail(const char *what, fleet_status st)
{
    fprintf(stderr, "%s: %s: %s\n", what, fleet_status_str(st), fleet_last_error());
    return 1;
}

#endif /* FLEET_EXAMPLES_EMBED_H */
