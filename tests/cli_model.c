/* `fleet info model.onnx` and `fleet run model.onnx` as a user runs them, on
 * models of ONNX's node tests (libonnx-testdata; skipped without it): the
 * report's facts, a run's outputs and figures (not judged: speed is read from
 * tables, never asserted), an unsupported model and bad options refused with
 * exit code 1 or 2 and a reason. */
#include <sys/stat.h>

#include "test_util.h"

#define FLEET_BIN FLEET_TEST_BINARY_DIR "/../fleet"
#define NODE_TESTS "/usr/share/libonnx-testdata/data/node"

static test_proc_result r;

static void fleet(char *const *args, int n)
{
    char *argv[16] = {FLEET_BIN};
    for (int i = 0; i < n; i++)
        argv[1 + i] = args[i];
    argv[1 + n] = NULL;
    static char *const env[] = {"FLEET_BACKEND=cpu", NULL};
    test_proc_spawn(argv, env, 60000, &r);
}

TEST(info_reports_the_models_facts)
{
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
    char *args[] = {"info", NODE_TESTS "/test_hardsigmoid/model.onnx"};
    fleet(args, 2);
    ASSERT_TRUE(r.exited && r.code == 1);
    ASSERT_OUT_CONTAINS(&r, "unsupported (1): HardSigmoid (opset");
}

TEST(run_prints_outputs_and_figures_from_several_threads)
{
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

int main(int argc, char **argv)
{
    struct stat sb;
    if (stat(NODE_TESTS, &sb) != 0) {
        printf("SKIP: no ONNX node tests at %s (install libonnx-testdata)\n", NODE_TESTS);
        return 77;
    }
    return test_main(argc, argv);
}
