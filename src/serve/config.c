/* serve/config.c — the server's defaults (in every build, with or without
 * the HTTP library). */
#include "fleet/server.h"

fleet_server_config fleet_server_config_default(void)
{
    return (fleet_server_config){.host = "127.0.0.1",
                                 .port = 8000,
                                 .http_threads = 2,
                                 .max_body_bytes = (size_t)64 << 20,
                                 .max_header_bytes = (size_t)32 << 10,
                                 .max_connections = 512,
                                 .request_timeout_ms = 30000,
                                 .idle_timeout_s = 60};
}
