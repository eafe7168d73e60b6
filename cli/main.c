/* cli/main.c — the fleet command-line tool. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fleet.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fleet <command> [options]\n"
            "\n"
            "commands:\n"
            "  demo [--threads N] [--iters N] [--size N]\n"
            "        N threads run matmul+relu on their own streams of the default device;\n"
            "        prints each thread's stream id and checks every result (default 8 x 50, 64)\n"
            "  bench [--threads 1,2,4,8,16] [--workloads ...] [--backend cpu|cuda] [--quick] [--json F]\n"
            "        [--model m.onnx [--batch B]... [--dim name=N]... [--name NAME]]\n"
            "        ops/s, speedup and efficiency of the reference workloads (or of an ONNX\n"
            "        model, one row per batch) per thread count\n"
            "        (fleet bench --help lists them)\n"
            "  info  devices, backends and stream-pool configuration\n"
            "  info model.onnx [--dim name=N]... [--backend cpu|cuda]\n"
            "        inputs, outputs, ops used, parameters, what folded and fused at load and\n"
            "        what is unsupported\n"
            "  run model.onnx [--threads N] [--batch B] [--seconds S] [--dim name=N]...\n"
            "                 [--backend cpu|cuda] [--input name=file.npy]... [--output DIR]\n"
            "        N threads run the model (shared) on generated inputs: each output's shape\n"
            "        and checksum, runs/s, samples/s, p50/p99 latency (default 1 thread,\n"
            "        batch 1, 3 s); --input reads input `name` from a NumPy .npy file instead\n"
            "        (its batch dimension sets the batch), --output writes each output to\n"
            "        DIR/<name>.npy (unsafe bytes of the name made '_')\n"
            "  serve --models DIR [--port 8000] [--host 127.0.0.1] [--http-threads N]\n"
            "        [--max-body BYTES] [--max-connections N] [--request-timeout-ms MS]\n"
            "        [--idle-timeout-s S] [--drain-ms MS]\n"
            "        an Open Inference Protocol (KServe v2) REST server for the models of DIR\n"
            "        (one folder each: model.onnx, config.json); SIGTERM/SIGINT drain it\n"
            "        (docs/SERVING.md)\n"
            "\n"
            "environment: FLEET_BACKEND, FLEET_STREAMS, FLEET_STREAM_WAIT_MS, FLEET_MEMORY_LIMIT,\n"
            "             FLEET_CPU_DEVICES, FLEET_GRAPH_CACHE, FLEET_MODEL_GRAPHS,\n"
            "             FLEET_LOG_LEVEL (see include/fleet/runtime.h)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "demo") == 0)
        return fleet_cli_demo(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0)
        return fleet_cli_bench(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0)
        return argc > 2 && argv[2][0] != '-' ? fleet_cli_model_info(argc - 1, argv + 1)
                                             : fleet_cli_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return fleet_cli_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return fleet_cli_serve(argc - 1, argv + 1);
    fprintf(stderr, "fleet: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
