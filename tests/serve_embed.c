/* serve_embed — fleet_server (fleet/server.h) embedded in a C program: a
 * repository written by the test (an ONNX model y = 2 * relu(x)), a server
 * on an ephemeral port, requests over a plain socket with their answers'
 * values asserted, drain and stop; every refusal of create and start with
 * its reason (missing folder, bad port, a malformed or unknown config key,
 * a folder without a model, a bad folder name, a port in use); and the
 * model config parser's defaults, values and errors. In a build without
 * the server: that create says so. */
#include "harness.h"
#ifdef FLEET_HAVE_SERVER
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "onnx_writer.h"
#include "serve/serve.h"

static char root[256];

/* A response body holds the text (the harness's message buffer is smaller
 * than a body, so print a cut of it here). */
#define BODY_HAS(body, text)                                                                       \
    do {                                                                                           \
        if (strstr((body), (text)) == NULL)                                                        \
            fprintf(stderr, "body: %.600s\nlacks: %s\n", (body), (text));                          \
        ASSERT_TRUE(strstr((body), (text)) != NULL);                                               \
    } while (0)

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* root/<name>/model.onnx: x f32 [N, 4] -> y = relu(x) * 2; config.json
 * when given. */
static void make_model(const char *dir, const char *name, const char *config)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ASSERT_EQ(mkdir(path, 0755), 0);
    pbw g = {0};
    int64_t xd[] = {-1, 4};
    const char *const pn[] = {"N", NULL};
    onnx_w_value_info(&g, 11, "x", 1, 2, xd, pn);
    onnx_w_value_info(&g, 12, "y", 1, 2, xd, pn);
    const float two = 2.0f;
    int64_t one[] = {1};
    onnx_w_init_raw(&g, "two", 1, 1, one, &two, sizeof two);
    onnx_w_node(&g, "Relu", "relu", (const char *[]){"x"}, 1, "r", NULL, 0);
    onnx_w_node(&g, "Mul", "mul", (const char *[]){"r", "two"}, 2, "y", NULL, 0);
    pbw file = onnx_w_model(&g, 17);
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    write_file(path, file.p, file.n);
    pbw_free(&file);
    if (config != NULL) {
        snprintf(path, sizeof path, "%s/%s/config.json", dir, name);
        write_file(path, config, strlen(config));
    }
}

static const char *fresh_dir(const char *tag)
{
    static char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, tag);
    ASSERT_EQ(mkdir(dir, 0755), 0);
    return dir;
}

/* One request on its own connection; the status, and the body in body. */
static int http(int port, const char *method, const char *path, const char *json, char *body,
                size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_TRUE(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[2048];
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 method, path, json ? strlen(json) : 0, json ? json : "");
    ASSERT_EQ(write(fd, req, (size_t)n), n);
    static char buf[65536];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fd);
    int status = 0;
    ASSERT_EQ(sscanf(buf, "HTTP/1.1 %d", &status), 1);
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, size, "%s", b ? b + 4 : "");
    return status;
}

TEST(serve_infer_metadata_and_drain)
{
    const char *dir = fresh_dir("good");
    make_model(dir, "double_relu", "{\"max_batch\": 8, \"max_delay_us\": 100}");
    fleet_server_config cfg = fleet_server_config_default();
    cfg.models_dir = dir;
    cfg.port = 0;
    fleet_server *s;
    ASSERT_OK(fleet_server_create(&cfg, &s));
    ASSERT_EQ(fleet_server_port(s), -1); /* not listening yet */
    ASSERT_OK(fleet_server_start(s));
    int port = fleet_server_port(s);
    ASSERT_TRUE(port > 0 && port < 65536);
    ASSERT_STATUS(fleet_server_start(s), FLEET_ERR_INVALID_ARGUMENT); /* twice */

    char body[8192];
    ASSERT_EQ(http(port, "GET", "/v2/health/ready", NULL, body, sizeof body), 200);
    ASSERT_EQ(http(port, "GET", "/v2/models/double_relu", NULL, body, sizeof body), 200);
    BODY_HAS(body, "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-1,4]}]");
    BODY_HAS(body, "\"platform\":\"onnx\"");
    ASSERT_EQ(
        http(port, "POST", "/v2/models/double_relu/infer",
             "{\"id\":\"q1\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP32\","
             "\"data\":[[1,-2,3.5,-4],[0.25,0,-1,8]]}]}",
             body, sizeof body),
        200);
    BODY_HAS(body, "\"data\":[2,0,7,0,0.5,0,0,16]");
    BODY_HAS(body, "\"shape\":[2,4]");
    BODY_HAS(body, "\"id\":\"q1\"");
    ASSERT_EQ(http(port, "POST", "/v2/models/double_relu/infer",
                   "{\"inputs\":[{\"name\":\"x\",\"shape\":[9,4],\"datatype\":\"FP32\","
                   "\"parameters\":{}}]}",
                   body, sizeof body),
              400);
    ASSERT_EQ(http(port, "POST", "/v2/models/nope/infer", "{}", body, sizeof body), 404);
    BODY_HAS(body, "\"error\"");
    ASSERT_EQ(http(port, "GET", "/metrics", NULL, body, sizeof body), 200);
    BODY_HAS(body, "nv_inference_request_success{model=\"double_relu\",version=\"1\"} 1\n");
    BODY_HAS(body, "nv_inference_request_failure{model=\"double_relu\",version=\"1\"} 1\n");
    BODY_HAS(body, "nv_inference_count{model=\"double_relu\",version=\"1\"} 2\n");

    ASSERT_OK(fleet_server_stop(s, 1000));
    ASSERT_OK(fleet_server_stop(s, 1000));                                        /* idempotent */
    ASSERT_EQ(http(port, "GET", "/v2/health/live", NULL, body, sizeof body), -1); /* closed */
    ASSERT_OK(fleet_server_destroy(s));
    ASSERT_OK(fleet_server_destroy(NULL));
}

static void refused(const char *dir, fleet_status want, const char *needle)
{
    fleet_server_config cfg = fleet_server_config_default();
    cfg.models_dir = dir;
    fleet_server *s = (fleet_server *)&cfg; /* must come back NULL */
    ASSERT_STATUS(fleet_server_create(&cfg, &s), want);
    ASSERT_STR_CONTAINS(fleet_last_error(), needle);
    ASSERT_TRUE(s == NULL);
}

TEST(create_refusals_say_why)
{
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing", root);
    refused(missing, FLEET_ERR_IO, "missing");
    refused(fresh_dir("empty"), FLEET_ERR_INVALID_CONFIG, "no model folders");
    const char *d = fresh_dir("unknown_key");
    make_model(d, "m", "{\"max_batch\": 4, \"max_bach\": 8}");
    refused(d, FLEET_ERR_INVALID_CONFIG, "unknown key \"max_bach\"");
    d = fresh_dir("bad_value");
    make_model(d, "m", "{\"max_batch\": 0}");
    refused(d, FLEET_ERR_INVALID_CONFIG, "\"max_batch\" must be an integer in 1..4096");
    d = fresh_dir("malformed");
    make_model(d, "m", "{\"max_batch\": ");
    refused(d, FLEET_ERR_INVALID_CONFIG, "malformed JSON");
    d = fresh_dir("no_model");
    char path[400];
    snprintf(path, sizeof path, "%s/empty_model", d);
    ASSERT_EQ(mkdir(path, 0755), 0);
    refused(d, FLEET_ERR_INVALID_CONFIG, "no model.onnx");
    d = fresh_dir("bad_name");
    make_model(d, "a b", NULL);
    refused(d, FLEET_ERR_INVALID_CONFIG, "'a b'");
    d = fresh_dir("bad_device");
    make_model(d, "m", "{\"device\": \"tpu:0\"}");
    refused(d, FLEET_ERR_INVALID_CONFIG, "tpu:0");

    fleet_server_config cfg = fleet_server_config_default();
    fleet_server *s;
    ASSERT_STATUS(fleet_server_create(NULL, &s), FLEET_ERR_NULL_POINTER);
    ASSERT_STATUS(fleet_server_create(&cfg, &s), FLEET_ERR_INVALID_ARGUMENT); /* no dir */
    cfg.models_dir = root;
    cfg.port = 70000;
    ASSERT_STATUS(fleet_server_create(&cfg, &s), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "port 70000");
}

TEST(start_refuses_a_port_in_use_and_a_bad_host)
{
    const char *dir = fresh_dir("ports");
    make_model(dir, "m", NULL);
    fleet_server_config cfg = fleet_server_config_default();
    cfg.models_dir = dir;
    cfg.port = 0;
    fleet_server *a, *b, *c;
    ASSERT_OK(fleet_server_create(&cfg, &a));
    ASSERT_OK(fleet_server_start(a));
    cfg.port = fleet_server_port(a);
    ASSERT_OK(fleet_server_create(&cfg, &b));
    ASSERT_STATUS(fleet_server_start(b), FLEET_ERR_IO);
    ASSERT_STR_CONTAINS(fleet_last_error(), "cannot listen");
    ASSERT_OK(fleet_server_destroy(b));
    cfg.port = 0;
    cfg.host = "localhost"; /* numeric addresses only */
    ASSERT_OK(fleet_server_create(&cfg, &c));
    ASSERT_STATUS(fleet_server_start(c), FLEET_ERR_INVALID_ARGUMENT);
    ASSERT_STR_CONTAINS(fleet_last_error(), "not a numeric address");
    ASSERT_OK(fleet_server_destroy(c));
    ASSERT_OK(fleet_server_destroy(a));
}

static fleet__serve_model_config parsed(const char *text)
{
    fleet__serve_model_config c;
    char err[256] = "";
    fleet_status st =
        fleet__serve_parse_model_config(text, text ? strlen(text) : 0, &c, err, sizeof err);
    if (st != FLEET_OK)
        fprintf(stderr, "config refused: %s\n", err);
    ASSERT_EQ(st, FLEET_OK);
    return c;
}

static void config_refused(const char *text, const char *needle)
{
    fleet__serve_model_config c;
    char err[256] = "";
    ASSERT_EQ(fleet__serve_parse_model_config(text, strlen(text), &c, err, sizeof err),
              FLEET_ERR_INVALID_CONFIG);
    ASSERT_STR_CONTAINS(err, needle);
}

TEST(model_config_defaults_values_and_errors)
{
    fleet__serve_model_config c = parsed(NULL);
    ASSERT_EQ(c.max_batch, 32);
    ASSERT_EQ(c.max_delay_us, 500);
    ASSERT_EQ(c.instances, 2);
    ASSERT_EQ(c.queue_capacity, 1024);
    ASSERT_EQ(c.timeout_ms, 0);
    ASSERT_TRUE(c.n_devices == 1 && strcmp(c.devices[0], "default") == 0 && c.builder[0] == '\0' && c.n_dims == 0);
    c = parsed("{\"max_batch\":64,\"max_delay_us\":0,\"instances\":4,\"queue_capacity\":10,"
               "\"timeout_ms\":250,\"device\":\"cpu:0\",\"dims\":{\"seq\":128,\"w\":7}}");
    ASSERT_EQ(c.max_batch, 64);
    ASSERT_EQ(c.max_delay_us, 0);
    ASSERT_EQ(c.instances, 4);
    ASSERT_EQ(c.queue_capacity, 10);
    ASSERT_EQ(c.timeout_ms, 250);
    ASSERT_TRUE(c.n_devices == 1 && strcmp(c.devices[0], "cpu:0") == 0);
    ASSERT_EQ(c.n_dims, 2);
    ASSERT_TRUE(strcmp(c.dim_names[0], "seq") == 0 && c.dim_values[0] == 128);
    ASSERT_TRUE(strcmp(c.dim_names[1], "w") == 0 && c.dim_values[1] == 7);
    c = parsed("{\"builder\":\"mlp\",\"widths\":[16,32,8]}");
    ASSERT_TRUE(strcmp(c.builder, "mlp") == 0);
    ASSERT_EQ(c.n_widths, 3);
    ASSERT_EQ(c.widths[2], 8);
    c = parsed("{\"devices\":[\"cuda:0\",\"cuda:1\",\"cpu\"]}");
    ASSERT_EQ(c.n_devices, 3);
    ASSERT_TRUE(strcmp(c.devices[1], "cuda:1") == 0 && strcmp(c.devices[2], "cpu") == 0);
    config_refused("{\"device\":\"cpu\",\"devices\":[\"cpu\"]}", "not both");
    config_refused("{\"devices\":[]}", "an array of 1..16 device strings");
    config_refused("{\"devices\":[\"cpu:0\",\"cpu:0\"]}", "names cpu:0 twice");
    config_refused("{\"devices\":[3]}", "must hold strings");
    config_refused("[]", "not a JSON object");
    config_refused("{\"instances\":17}", "\"instances\" must be an integer in 1..16");
    config_refused("{\"max_delay_us\":1.5}", "\"max_delay_us\" must be an integer");
    config_refused("{\"device\":7}", "\"device\" must be a string");
    config_refused("{\"dims\":[1]}", "\"dims\" must be an object");
    config_refused("{\"dims\":{\"s\":-1}}", "integer sizes");
    config_refused("{\"builder\":\"cnn\"}", "\"builder\" must be \"mlp\"");
    config_refused("{\"builder\":\"mlp\",\"widths\":[4]}", "2..32 integers");
    config_refused("{\"widths\":[4,4]}", "\"widths\" without \"builder\"");
}

int main(int argc, char **argv)
{
    snprintf(root, sizeof root, "/tmp/fleet-serve-embed-XXXXXX");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    int rc = test_main(argc, argv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return rc;
}
#else
/* Built without the server: the API is there and says why it cannot serve. */
TEST(without_the_server_create_says_so)
{
    fleet_server_config cfg = fleet_server_config_default();
    ASSERT_EQ(cfg.port, 8000);
    ASSERT_TRUE(strcmp(cfg.host, "127.0.0.1") == 0);
    cfg.models_dir = "/tmp";
    fleet_server *s = (fleet_server *)&cfg;
    ASSERT_REFUSED(fleet_server_create(&cfg, &s), FLEET_ERR_UNSUPPORTED,
                   "built without the server");
    ASSERT_TRUE(s == NULL);
    ASSERT_EQ(fleet_server_port(NULL), -1);
    ASSERT_OK(fleet_server_destroy(NULL));
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
#endif
