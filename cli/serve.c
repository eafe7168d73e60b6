/* cli/serve.c — fleet serve: the Open Inference Protocol server
 * (fleet/server.h) on a model repository until SIGTERM or SIGINT, which
 * drain it: no new connections, in-flight requests finish (up to
 * --drain-ms, then they get 503), exit 0.
 *
 *   fleet serve --models DIR [--port 8000] [--host 127.0.0.1] [--http-threads N]
 *               [--max-body BYTES] [--max-connections N] [--request-timeout-ms MS]
 *               [--idle-timeout-s S] [--drain-ms MS]
 *
 * Once listening it prints "fleet serve: listening on http://HOST:PORT" on
 * stdout (the port chosen when --port is 0). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fleet.h"
#include "fleet/server.h"

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe[1], &b, 1); /* async-signal-safe */
    (void)ignored;
    errno = saved;
}

static int number(const char *opt, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (v == NULL || *end != '\0' || end == v || n < lo || n > hi) {
        fprintf(stderr, "fleet serve: %s takes %lld..%lld\n", opt, lo, hi);
        return 2;
    }
    *out = n;
    return 0;
}

int fleet_cli_serve(int argc, char **argv)
{
    fleet_server_config cfg = fleet_server_config_default();
    long long drain_ms = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        int rc = 0;
        if (strcmp(a, "--models") == 0 && v != NULL)
            cfg.models_dir = v;
        else if (strcmp(a, "--host") == 0 && v != NULL)
            cfg.host = v;
        else if (strcmp(a, "--port") == 0)
            rc = number(a, v, 0, 65535, &n), cfg.port = (int)n;
        else if (strcmp(a, "--http-threads") == 0)
            rc = number(a, v, 1, 64, &n), cfg.http_threads = (int)n;
        else if (strcmp(a, "--max-body") == 0)
            rc = number(a, v, 64, (long long)1 << 40, &n), cfg.max_body_bytes = (size_t)n;
        else if (strcmp(a, "--max-connections") == 0)
            rc = number(a, v, 1, 65536, &n), cfg.max_connections = (int)n;
        else if (strcmp(a, "--request-timeout-ms") == 0)
            rc = number(a, v, 1, 3600000, &n), cfg.request_timeout_ms = n;
        else if (strcmp(a, "--idle-timeout-s") == 0)
            rc = number(a, v, 1, 86400, &n), cfg.idle_timeout_s = (int)n;
        else if (strcmp(a, "--drain-ms") == 0)
            rc = number(a, v, 0, 3600000, &drain_ms);
        else {
            fprintf(stderr, "fleet serve: unknown or incomplete option '%s'\n", a);
            return 2;
        }
        if (rc != 0)
            return rc;
        i++;
    }
    if (cfg.models_dir == NULL) {
        fprintf(stderr, "fleet serve: give the model repository: --models DIR\n");
        return 2;
    }
    /* SIGTERM/SIGINT: a handler (process-wide, whichever thread takes the
     * signal: libraries may have started threads before main) writes to a
     * pipe that this thread waits on. */
    if (pipe(signal_pipe) != 0) {
        perror("fleet serve: pipe");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    fleet_server *s = NULL;
    fleet_status st = fleet_server_create(&cfg, &s);
    if (st == FLEET_OK)
        st = fleet_server_start(s);
    if (st != FLEET_OK) {
        if (st == FLEET_ERR_UNSUPPORTED)
            fprintf(stderr, "fleet serve: %s\n", fleet_last_error());
        else
            fprintf(stderr, "fleet serve: %s: %s\n", fleet_status_str(st), fleet_last_error());
        fleet_server_destroy(s);
        return st == FLEET_ERR_UNSUPPORTED ? 3 : 1;
    }
    printf("fleet serve: listening on http://%s:%d\n", cfg.host, fleet_server_port(s));
    fflush(stdout);
    unsigned char sig = 0;
    while (read(signal_pipe[0], &sig, 1) != 1 && errno == EINTR)
        ;
    fprintf(stderr, "fleet serve: %s: draining (up to %lld ms)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", drain_ms);
    st = fleet_server_stop(s, drain_ms);
    if (st != FLEET_OK)
        fprintf(stderr, "fleet serve: %s\n", fleet_last_error());
    fleet_server_destroy(s);
    fprintf(stderr, "fleet serve: stopped\n");
    return 0;
}
