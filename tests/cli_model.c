/* `fleet info model.onnx` and `fleet run model.onnx` as a user runs them:
 * on models of ONNX's node tests (libonnx-testdata; those tests are skipped
 * without it) the report's facts, a run's outputs and figures (not judged:
 * speed is read from tables, never asserted), an unsupported model and bad
 * options refused with exit code 1 or 2 and a reason; on a model written
 * here, inputs read from .npy files (written here byte by byte) and the
 * outputs written to .npy files, read back and checked against the values
 * computed here, output names made safe, and every input that does not fit
 * the model refused with exit code 2 and what was expected and found. */
#include <dirent.h>
#include <sys/stat.h>

#include "onnx_writer.h"
#include "test_util.h"

#define FLEET_BIN FLEET_TEST_BINARY_DIR "/../fleet"
#define NODE_TESTS "/usr/share/libonnx-testdata/data/node"

static test_proc_result r;

static void fleet(char *const *args, int n)
{
    char *argv[32] = {FLEET_BIN};
    ASSERT_TRUE(n < 31);
    for (int i = 0; i < n; i++)
        argv[1 + i] = args[i];
    argv[1 + n] = NULL;
    static char *const env[] = {"FLEET_BACKEND=cpu", NULL};
    test_proc_spawn(argv, env, 60000, &r);
}

/* Whether ONNX's node tests are installed; says so when they are not. */
static bool have_node_tests(void)
{
    struct stat sb;
    if (stat(NODE_TESTS, &sb) == 0)
        return true;
    printf("  skipped: no ONNX node tests at %s (install libonnx-testdata)\n", NODE_TESTS);
    return false;
}

TEST(info_reports_the_models_facts)
{
    if (!have_node_tests())
        return;
    char *args[] = {"info", NODE_TESTS "/test_gemm_default_vector_bias/model.onnx"};
    fleet(args, 2);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "opset 13");
    ASSERT_OUT_CONTAINS(&r, "ops: Gemm 1");
    ASSERT_OUT_CONTAINS(&r, "input  a");
    ASSERT_OUT_CONTAINS(&r, "f32   2 x 7");
    ASSERT_OUT_CONTAINS(&r, "output y");
}

TEST(info_lists_what_is_unsupported)
{
    if (!have_node_tests())
        return;
    char *args[] = {"info", NODE_TESTS "/test_hardsigmoid/model.onnx"};
    fleet(args, 2);
    ASSERT_TRUE(r.exited && r.code == 1);
    ASSERT_OUT_CONTAINS(&r, "unsupported (1): HardSigmoid (opset");
}

TEST(run_prints_outputs_and_figures_from_several_threads)
{
    if (!have_node_tests())
        return;
    char *args[] = {"run", NODE_TESTS "/test_gemm_default_vector_bias/model.onnx", "--threads",
                    "3", "--seconds", "0.3"};
    fleet(args, 6);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "3 thread(s)");
    ASSERT_OUT_CONTAINS(&r, "output y");
    ASSERT_OUT_CONTAINS(&r, "2 x 4");
    ASSERT_OUT_CONTAINS(&r, "runs/s");
    ASSERT_OUT_CONTAINS(&r, "p99");
}

TEST(bad_options_and_files_are_refused)
{
    char *no_file[] = {"run"};
    fleet(no_file, 1);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "give a model file");
    char *bad_dim[] = {"run", "x.onnx", "--dim", "seq"};
    fleet(bad_dim, 4);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "--dim takes name=N");
    char *missing[] = {"run", "/nonexistent/model.onnx"};
    fleet(missing, 2);
    ASSERT_TRUE(r.exited && r.code == 1);
    ASSERT_OUT_CONTAINS(&r, "cannot open");
}

/* ---- .npy inputs and outputs ---------------------------------------------------------- */

/* Writes the graph (freed) as an opset-17 model file at path. */
static void write_model(pbw *g, const char *path)
{
    pbw m = onnx_w_model(g, 17);
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(fwrite(m.p, 1, m.n, f), m.n);
    ASSERT_EQ(fclose(f), 0);
    pbw_free(&m);
}

static char dir[] = "/tmp/fleet-cli-npy-XXXXXX";
static char model_path[256];

/* x f32 [N, 3], s f32 [3], n i64 [N];
 * "y/sum" = x + s, "../relu" = relu(x), "n2" = n + n. */
static void write_test_model(void)
{
    pbw g = {0};
    pbw_str(&g, 2, "npy_io");
    int64_t xd[] = {-1, 3}, sd[] = {3}, nd[] = {-1};
    const char *const pn[] = {"N", NULL}; /* the batch */
    onnx_w_value_info(&g, 11, "x", 1, 2, xd, pn);
    onnx_w_value_info(&g, 11, "s", 1, 1, sd, pn);
    onnx_w_value_info(&g, 11, "n", 7, 1, nd, pn);
    onnx_w_value_info(&g, 12, "y/sum", 1, 2, xd, pn);
    onnx_w_value_info(&g, 12, "../relu", 1, 2, xd, pn);
    onnx_w_value_info(&g, 12, "n2", 7, 1, nd, pn);
    onnx_w_node(&g, "Add", "", (const char *[]){"x", "s"}, 2, "y/sum", NULL, 0);
    onnx_w_node(&g, "Relu", "", (const char *[]){"x"}, 1, "../relu", NULL, 0);
    onnx_w_node(&g, "Add", "", (const char *[]){"n", "n"}, 2, "n2", NULL, 0);
    snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
    write_model(&g, model_path);
}

/* A .npy file as numpy writes it (format 1.0, the header padded with
 * blanks and a newline to 64 bytes), written byte by byte. */
static void write_npy(const char *name, const char *descr, const char *shape, const void *data,
                      size_t nbytes)
{
    char path[300], header[256];
    int n = snprintf(header, sizeof header,
                     "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t hlen = (10 + (size_t)n + 1 + 63) / 64 * 64 - 10;
    memset(header + n, ' ', hlen - (size_t)n - 1);
    header[hlen - 1] = '\n';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hlen,
                             (unsigned char)(hlen >> 8)};
    ASSERT_EQ(fwrite(pre, 1, 10, f), 10);
    ASSERT_EQ(fwrite(header, 1, hlen, f), hlen);
    ASSERT_EQ(fwrite(data, 1, nbytes, f), nbytes);
    ASSERT_EQ(fclose(f), 0);
}

/* Reads dir/rel, a .npy file that must be format 1.0 with the descr and
 * shape text given and exactly nbytes of data, into data. */
static void read_npy(const char *rel, const char *descr, const char *shape, void *data,
                     size_t nbytes)
{
    char path[300], want[96];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    unsigned char file[4096];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    ASSERT_TRUE(n >= 10 && memcmp(file, "\x93NUMPY\x01\x00", 8) == 0);
    size_t hlen = (size_t)file[8] | (size_t)file[9] << 8;
    ASSERT_EQ((10 + hlen) % 64, 0);
    ASSERT_EQ(n, 10 + hlen + nbytes);
    ASSERT_EQ(file[10 + hlen - 1], '\n');
    char header[4096];
    memcpy(header, file + 10, hlen);
    header[hlen] = '\0';
    snprintf(want, sizeof want, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
             descr, shape);
    if (strstr(header, want) == NULL) {
        printf("%s: header %s\n", rel, header);
        ASSERT_TRUE(strstr(header, want) != NULL);
    }
    memcpy(data, file + 10 + hlen, nbytes);
}

static int entries_in(const char *rel)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static bool exists(const char *rel)
{
    char path[300];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &sb) == 0;
}

/* `fleet run model.onnx --seconds 0.1` with the arguments after it. */
static void fleet_run(char **args, int n)
{
    char *argv[24] = {"run", model_path, "--seconds", "0.1"};
    ASSERT_TRUE(n <= 20);
    for (int i = 0; i < n; i++)
        argv[4 + i] = args[i];
    fleet(argv, 4 + n);
}

/* prefix, then the path of rel in the test's folder ("x=/tmp/.../x.npy"),
 * in one of 16 buffers used in turn. */
static char *arg(const char *prefix, const char *rel)
{
    static char bufs[16][320];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s%s/%s", prefix, dir, rel);
    return b;
}

static float x_at(int k)
{
    return (float)k * 0.5f - 2.75f; /* exact: quarters */
}

TEST(run_reads_npy_inputs_and_writes_npy_outputs)
{
    float x[4 * 3];
    for (int k = 0; k < 12; k++)
        x[k] = x_at(k);
    const double s[3] = {0.25, -1.0, 3.0}; /* '<f8' into the f32 input: rounded */
    const int64_t n[4] = {1, -2, 3, (int64_t)1 << 40};
    write_npy("x.npy", "<f4", "(4, 3)", x, sizeof x);
    write_npy("s.npy", "<f8", "(3,)", s, sizeof s);
    write_npy("n.npy", "<i8", "(4,)", n, sizeof n);
    char *args[] = {"--threads", "2", "--input", arg("x=", "x.npy"), "--input",
                    arg("s=", "s.npy"), "--input", arg("n=", "n.npy"), "--output",
                    arg("", "out")};
    fleet_run(args, 10);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "2 thread(s), batch 4");
    ASSERT_OUT_CONTAINS(&r, "input  x");
    ASSERT_OUT_CONTAINS(&r, "/out/y_sum.npy");
    ASSERT_OUT_CONTAINS(&r, "/out/_._relu.npy");
    ASSERT_OUT_CONTAINS(&r, "/out/n2.npy");
    /* three files in out/, the names made safe, nothing outside it, no
     * temporary file left */
    ASSERT_EQ(entries_in("out"), 3);
    ASSERT_TRUE(!exists("relu.npy") && !exists("out/../relu.npy"));
    float sum[12], relu[12];
    int64_t n2[4];
    read_npy("out/y_sum.npy", "<f4", "(4, 3)", sum, sizeof sum);
    read_npy("out/_._relu.npy", "<f4", "(4, 3)", relu, sizeof relu);
    read_npy("out/n2.npy", "<i8", "(4,)", n2, sizeof n2);
    for (int k = 0; k < 12; k++) {
        ASSERT_TRUE(sum[k] == x[k] + (float)s[k % 3]);
        ASSERT_TRUE(relu[k] == (x[k] > 0 ? x[k] : 0.0f));
    }
    for (int k = 0; k < 4; k++)
        ASSERT_EQ(n2[k], 2 * n[k]);
    /* a second run replaces the files */
    float x2[2 * 3] = {-1, 2, -3, 4, -5, 6};
    write_npy("x2.npy", "<f4", "(2, 3)", x2, sizeof x2);
    char *again[] = {"--input", arg("x=", "x2.npy"), "--output", arg("", "out")};
    fleet_run(again, 4);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "batch 2");
    ASSERT_EQ(entries_in("out"), 3);
    read_npy("out/_._relu.npy", "<f4", "(2, 3)", relu, sizeof(float) * 6);
    for (int k = 0; k < 6; k++)
        ASSERT_TRUE(relu[k] == (x2[k] > 0 ? x2[k] : 0.0f));
}

TEST(inputs_without_a_file_are_made_at_the_files_batch)
{
    float x[5 * 3];
    for (int k = 0; k < 15; k++)
        x[k] = x_at(k);
    write_npy("x5.npy", "<f4", "(5, 3)", x, sizeof x);
    char *args[] = {"--input", arg("x=", "x5.npy"), "--output", arg("", "gen")};
    fleet_run(args, 4);
    ASSERT_PROC_OK(&r);
    ASSERT_OUT_CONTAINS(&r, "batch 5");
    float sum[15], relu[15];
    int64_t n2[5];
    read_npy("gen/y_sum.npy", "<f4", "(5, 3)", sum, sizeof sum);
    read_npy("gen/_._relu.npy", "<f4", "(5, 3)", relu, sizeof relu);
    read_npy("gen/n2.npy", "<i8", "(5,)", n2, sizeof n2);
    for (int k = 0; k < 15; k++) {
        ASSERT_TRUE(relu[k] == (x[k] > 0 ? x[k] : 0.0f));
        /* s was made here, the same row added to every row of x */
        ASSERT_TRUE(fabsf((sum[k] - x[k]) - (sum[k % 3] - x[k % 3])) <= 1e-6f);
        ASSERT_TRUE(fabsf(sum[k] - x[k]) <= 1.0f);
    }
    for (int k = 0; k < 5; k++)
        ASSERT_EQ(n2[k], 2); /* integer inputs made here are 1 */
}

/* The run is refused with exit code 2 and the message, before anything
 * ran: the output folder is not even made. */
static void assert_refused(char **args, int n, const char *message)
{
    char *with_output[24];
    for (int i = 0; i < n; i++)
        with_output[i] = args[i];
    with_output[n] = "--output";
    with_output[n + 1] = arg("", "refused");
    fleet_run(with_output, n + 2);
    if (!r.exited || r.code != 2) {
        printf("%s\n", r.out);
        ASSERT_EQ(r.code, 2);
    }
    ASSERT_OUT_CONTAINS(&r, message);
    ASSERT_TRUE(strstr(r.out, "runs/s") == NULL);
    ASSERT_TRUE(!exists("refused"));
}

TEST(npy_inputs_that_do_not_fit_the_model_are_refused)
{
    float x[4 * 3] = {0};
    int64_t x_i8[4 * 3] = {0}, n5[5] = {0};
    double n_f8[4] = {0};
    write_npy("x_i8.npy", "<i8", "(4, 3)", x_i8, sizeof x_i8);
    write_npy("x_flat.npy", "<f4", "(12,)", x, sizeof x);
    write_npy("x_4x2.npy", "<f4", "(4, 2)", x, sizeof(float) * 8);
    write_npy("x.npy", "<f4", "(4, 3)", x, sizeof x);
    write_npy("n5.npy", "<i8", "(5,)", n5, sizeof n5);
    write_npy("n_f8.npy", "<f8", "(4,)", n_f8, sizeof n_f8);
    write_npy("x_short.npy", "<f4", "(4, 3)", x, sizeof x - 4);

    char *dtype[] = {"--input", arg("x=", "x_i8.npy")};
    assert_refused(dtype, 2, "fleet run: input 'x' from ");
    assert_refused(dtype, 2, "x_i8.npy: expected dtype f32 ('<f4', or '<f8' rounded to f32), "
                             "found '<i8' (i64)");
    char *f64[] = {"--input", arg("n=", "n_f8.npy")};
    assert_refused(f64, 2, "expected dtype i64 ('<i8'), found '<f8' (f64, read only into an "
                           "f32 input)");
    char *rank[] = {"--input", arg("x=", "x_flat.npy")};
    assert_refused(rank, 2, "expected 2 dimensions (batch x 3), found 1 (12)");
    char *dim[] = {"--input", arg("x=", "x_4x2.npy")};
    assert_refused(dim, 2, "expected shape batch x 3, found 4 x 2 (dimension 1 is 2, not 3)");
    char *name[] = {"--input", arg("q=", "x.npy")};
    assert_refused(name, 2, "the model has no input 'q' (its inputs: x, s, n)");
    char *batch[] = {"--batch", "2", "--input", arg("x=", "x.npy")};
    assert_refused(batch, 4, "expected batch 2 (from --batch 2) in dimension 0, found 4 "
                             "(shape 4 x 3)");
    char *two[] = {"--input", arg("x=", "x.npy"), "--input", arg("n=", "n5.npy")};
    assert_refused(two, 4, "fleet run: input 'n' from ");
    assert_refused(two, 4, "n5.npy: expected batch 4 (from input 'x' from ");
    assert_refused(two, 4, "x.npy) in dimension 0, found 5 (shape 5)");
    char *cut[] = {"--input", arg("x=", "x_short.npy")};
    assert_refused(cut, 2, "x_short.npy: truncated: the data is 44 bytes, shape (4, 3) of "
                           "'<f4' needs 48");
    char *missing[] = {"--input", arg("x=", "nothing.npy")};
    assert_refused(missing, 2, "nothing.npy': No such file or directory");
    char *syntax[] = {"--input", "x.npy"};
    assert_refused(syntax, 2, "--input takes name=file.npy, got 'x.npy'");
    char *twice[] = {"--input", arg("x=", "x.npy"), "--input", arg("x=", "x.npy")};
    assert_refused(twice, 4, "--input 'x' given twice");
}

TEST(outputs_whose_files_would_collide_or_have_no_folder_are_refused)
{
    pbw g = {0};
    int64_t d[] = {-1, 2};
    const char *const pn[] = {"N", NULL};
    onnx_w_value_info(&g, 11, "x", 1, 2, d, pn);
    onnx_w_value_info(&g, 12, "a/b", 1, 2, d, pn);
    onnx_w_value_info(&g, 12, "a_b", 1, 2, d, pn);
    onnx_w_node(&g, "Relu", "", (const char *[]){"x"}, 1, "a/b", NULL, 0);
    onnx_w_node(&g, "Neg", "", (const char *[]){"x"}, 1, "a_b", NULL, 0);
    char path[300];
    snprintf(path, sizeof path, "%s/collide.onnx", dir);
    write_model(&g, path);
    char *args[] = {"run", path, "--seconds", "0.1", "--output", arg("", "c")};
    fleet(args, 6);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "outputs 'a/b' and 'a_b' would both be written to ");
    ASSERT_OUT_CONTAINS(&r, "/c/a_b.npy");
    ASSERT_EQ(entries_in("c"), 0);
    /* an output folder that is a file */
    write_npy("plain.npy", "<f4", "()", (const float[]){1}, 4);
    char *file[] = {"--output", arg("", "plain.npy")};
    fleet_run(file, 2);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "plain.npy: not a folder this user can write to");
    char *info[] = {"info", model_path, "--output", arg("", "i")};
    fleet(info, 4);
    ASSERT_TRUE(r.exited && r.code == 2);
    ASSERT_OUT_CONTAINS(&r, "--input and --output are options of fleet run");
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    char sub[600];
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
    closedir(d);
    rmdir(path);
}

int main(int argc, char **argv)
{
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    write_test_model();
    int rc = test_main(argc, argv);
    remove_tree(dir);
    return rc;
}
