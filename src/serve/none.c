/* serve/none.c — fleet_server in a build without libmicrohttpd and cJSON
 * (CMake says so at configure time): the API is there, and says why it
 * cannot serve. */
#include "core/error.h"
#include "fleet/server.h"

fleet_status fleet_server_create(const fleet_server_config *cfg, fleet_server **out)
{
    if (out != NULL)
        *out = NULL;
    return fleet__error(FLEET_ERR_UNSUPPORTED,
                        "fleet_server_create: this fleet was built without the server "
                        "(libmicrohttpd and libcjson not found, or FLEET_SERVER=OFF: "
                        "scripts/install-deps.sh installs them, then reconfigure)");
}

fleet_status fleet_server_start(fleet_server *server)
{
    return fleet__error(FLEET_ERR_UNSUPPORTED, "fleet_server_start: built without the server");
}

int fleet_server_port(const fleet_server *server)
{
    return -1;
}

fleet_status fleet_server_stop(fleet_server *server, int64_t drain_ms)
{
    return server == NULL
               ? FLEET_OK
               : fleet__error(FLEET_ERR_UNSUPPORTED, "fleet_server_stop: built without the server");
}

fleet_status fleet_server_destroy(fleet_server *server)
{
    return FLEET_OK;
}
