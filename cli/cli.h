/* cli/cli.h — subcommands of the fleet tool. */
#ifndef FLEET_CLI_H
#define FLEET_CLI_H

/* `fleet demo`: N threads each run matmuls on their own stream and check
 * every result against a plain-C reference. Returns the process exit code. */
int fleet_cli_demo(int argc, char **argv);

/* `fleet bench`: ops/s of the reference workloads at 1..16 threads, or with
 * --model of an ONNX model per batch size (see cli/bench.c for the method).
 * The inputs it makes for a model: cli/model_inputs.h. */
int fleet_cli_bench(int argc, char **argv);

/* `fleet info`: backends, devices and the configuration in effect. */
int fleet_cli_info(int argc, char **argv);

/* `fleet info model.onnx` and `fleet run model.onnx` (cli/model_cmd.c). */
int fleet_cli_model_info(int argc, char **argv);
int fleet_cli_run(int argc, char **argv);
/* fleet serve (cli/serve.c): the inference server on a model repository. */
int fleet_cli_serve(int argc, char **argv);

#endif /* FLEET_CLI_H */
