/* serve/repository.c — the model repository: one subfolder per model, its
 * model file and an optional config.json (read with cJSON), loaded into a
 * finalized model with a batcher in front of it. */
#define _DEFAULT_SOURCE /* DT_DIR */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "fleet/onnx.h"
#include "serve/serve.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define MAX_MODELS 256

static fleet_status cfg_bad(char *err, size_t size, const char *fmt, ...) FLEET_PRINTF(3, 4);
static fleet_status cfg_bad(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return FLEET_ERR_INVALID_CONFIG;
}

/* An integer key in lo..hi, if present. */
static fleet_status get_int(const cJSON *root, const char *key, int64_t lo, int64_t hi,
                            int64_t *out, char *err, size_t es)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v == NULL)
        return FLEET_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return cfg_bad(err, es, "\"%s\" must be an integer in %lld..%lld", key, (long long)lo,
                       (long long)hi);
    *out = (int64_t)v->valuedouble;
    return FLEET_OK;
}

static const char *const known_keys[] = {"max_batch",      "max_delay_us", "instances",
                                         "queue_capacity", "timeout_ms",   "device",
                                         "devices",        "dims",         "builder",
                                         "widths"};

fleet_status fleet__serve_parse_model_config(const char *text, size_t len,
                                             fleet__serve_model_config *cfg, char *err, size_t es)
{
    *cfg = (fleet__serve_model_config){.max_batch = 32,
                                       .max_delay_us = 500,
                                       .instances = 2,
                                       .queue_capacity = 1024,
                                       .n_devices = 1,
                                       .devices = {"default"}};
    if (text == NULL)
        return FLEET_OK;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root == NULL)
        return cfg_bad(err, es, "malformed JSON");
    fleet_status st = FLEET_OK;
    if (!cJSON_IsObject(root)) {
        st = cfg_bad(err, es, "not a JSON object");
        goto out;
    }
    for (const cJSON *k = root->child; k != NULL; k = k->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++)
            known = known || strcmp(k->string, known_keys[i]) == 0;
        if (!known) {
            st = cfg_bad(err, es, "unknown key \"%.64s\"", k->string);
            goto out;
        }
    }
    int64_t v = cfg->max_batch;
    if ((st = get_int(root, "max_batch", 1, 4096, &v, err, es)) != FLEET_OK)
        goto out;
    cfg->max_batch = (int)v;
    if ((st = get_int(root, "max_delay_us", 0, 10000000, &cfg->max_delay_us, err, es)) != FLEET_OK)
        goto out;
    v = cfg->instances;
    if ((st = get_int(root, "instances", 1, 16, &v, err, es)) != FLEET_OK)
        goto out;
    cfg->instances = (int)v;
    v = cfg->queue_capacity;
    if ((st = get_int(root, "queue_capacity", 1, 1 << 20, &v, err, es)) != FLEET_OK)
        goto out;
    cfg->queue_capacity = (int)v;
    if ((st = get_int(root, "timeout_ms", 0, 3600000, &cfg->timeout_ms, err, es)) != FLEET_OK)
        goto out;
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(root, "devices");
    if (dev != NULL && devs != NULL) {
        st = cfg_bad(err, es, "give \"device\" or \"devices\", not both");
        goto out;
    }
    if (dev != NULL) {
        if (!cJSON_IsString(dev) || strlen(dev->valuestring) >= sizeof cfg->devices[0]) {
            st = cfg_bad(err, es, "\"device\" must be a string such as \"cpu\" or \"cuda:0\"");
            goto out;
        }
        strcpy(cfg->devices[0], dev->valuestring);
    }
    if (devs != NULL) {
        int n = cJSON_IsArray(devs) ? cJSON_GetArraySize(devs) : 0;
        if (n < 1 || n > FLEET__SERVE_MAX_REPLICAS) {
            st = cfg_bad(err, es, "\"devices\" must be an array of 1..%d device strings",
                         FLEET__SERVE_MAX_REPLICAS);
            goto out;
        }
        cfg->n_devices = 0;
        for (const cJSON *d = devs->child; d != NULL; d = d->next) {
            if (!cJSON_IsString(d) || strlen(d->valuestring) >= sizeof cfg->devices[0]) {
                st = cfg_bad(err, es, "\"devices\" must hold strings such as \"cuda:1\"");
                goto out;
            }
            for (int k = 0; k < cfg->n_devices; k++)
                if (strcmp(cfg->devices[k], d->valuestring) == 0) {
                    st = cfg_bad(err, es, "\"devices\" names %s twice", d->valuestring);
                    goto out;
                }
            strcpy(cfg->devices[cfg->n_devices++], d->valuestring);
        }
    }
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dims");
    if (dims != NULL) {
        if (!cJSON_IsObject(dims)) {
            st = cfg_bad(err, es, "\"dims\" must be an object of name: size");
            goto out;
        }
        for (const cJSON *d = dims->child; d != NULL; d = d->next) {
            if (cfg->n_dims == 16 || strlen(d->string) >= sizeof cfg->dim_names[0] ||
                !cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble) ||
                d->valuedouble < 0 || d->valuedouble > 1e12) {
                st = cfg_bad(err, es, "\"dims\": at most 16 names (< 64 bytes) of integer sizes");
                goto out;
            }
            strcpy(cfg->dim_names[cfg->n_dims], d->string);
            cfg->dim_values[cfg->n_dims++] = (int64_t)d->valuedouble;
        }
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "builder");
    if (b != NULL) {
        if (!cJSON_IsString(b) || strcmp(b->valuestring, "mlp") != 0) {
            st = cfg_bad(err, es, "\"builder\" must be \"mlp\" (the one builder served)");
            goto out;
        }
        strcpy(cfg->builder, "mlp");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "widths");
        int n = cJSON_IsArray(w) ? cJSON_GetArraySize(w) : 0;
        if (n < 2 || n > 32) {
            st = cfg_bad(err, es, "an mlp needs \"widths\": 2..32 integers");
            goto out;
        }
        for (const cJSON *x = w->child; x != NULL; x = x->next) {
            if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
                x->valuedouble < 1 || x->valuedouble > 1 << 20) {
                st = cfg_bad(err, es, "\"widths\" must be integers in 1..2^20");
                goto out;
            }
            cfg->widths[cfg->n_widths++] = (int64_t)x->valuedouble;
        }
    } else if (cJSON_GetObjectItemCaseSensitive(root, "widths") != NULL) {
        st = cfg_bad(err, es, "\"widths\" without \"builder\"");
    }
out:
    cJSON_Delete(root);
    return st;
}

static bool name_ok(const char *n)
{
    if (n[0] == '\0' || n[0] == '.' || strlen(n) >= 128)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The whole file (NUL-terminated), at most CONFIG_MAX_BYTES; NULL and errno. */
static char *read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = fleet__malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > CONFIG_MAX_BYTES) {
        free(buf);
        errno = buf ? EFBIG : ENOMEM;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static fleet_status pick_device(const char *d, fleet_device **out)
{
    if (strcmp(d, "default") == 0)
        return fleet_device_default(out);
    fleet_backend_kind kind;
    const char *rest;
    if (strncmp(d, "cpu", 3) == 0) {
        kind = FLEET_BACKEND_CPU;
        rest = d + 3;
    } else if (strncmp(d, "cuda", 4) == 0) {
        kind = FLEET_BACKEND_CUDA;
        rest = d + 4;
    } else {
        return fleet__error(FLEET_ERR_INVALID_CONFIG,
                            "device \"%s\": expected default, cpu[:N] or cuda[:N]", d);
    }
    int ordinal = 0;
    if (*rest == ':') {
        char *end;
        long n = strtol(rest + 1, &end, 10);
        if (*end != '\0' || end == rest + 1 || n < 0 || n > 1024)
            return fleet__error(FLEET_ERR_INVALID_CONFIG, "device \"%s\": a bad ordinal", d);
        ordinal = (int)n;
    } else if (*rest != '\0') {
        return fleet__error(FLEET_ERR_INVALID_CONFIG,
                            "device \"%s\": expected default, cpu[:N] or cuda[:N]", d);
    }
    return fleet_device_get(kind, ordinal, out);
}

/* The model of folder dir/name on one device, finalized, with its batcher;
 * on failure nothing is kept. */
static fleet_status load_replica(const char *dir, const char *name, fleet__serve_model *m,
                                 fleet__serve_replica *rep, const char *device)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/config.json", dir, name);
    fleet_status st = pick_device(device, &rep->device);
    if (st != FLEET_OK)
        return fleet__error_prefix(st, path);
    if (m->cfg.builder[0] == '\0') {
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
        if (!is_file(path))
            return fleet__error(FLEET_ERR_INVALID_CONFIG,
                                "%s/%s: no model.onnx (nor a \"builder\" in config.json)", dir,
                                name);
        const char *names[16];
        for (int i = 0; i < m->cfg.n_dims; i++)
            names[i] = m->cfg.dim_names[i];
        fleet_onnx_options o = FLEET_ONNX_OPTIONS_INIT;
        o.dim_names = names;
        o.dim_values = m->cfg.dim_values;
        o.n_dims = m->cfg.n_dims;
        st = fleet_model_load_onnx(rep->device, path, &o, &rep->model);
        m->platform = "onnx";
    } else {
        snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, name);
        st = fleet_model_build_mlp(rep->device, m->cfg.widths, m->cfg.n_widths, &rep->model);
        int loaded = 0;
        if (st == FLEET_OK)
            st = fleet_model_load_safetensors(rep->model, path, &loaded);
        if (st == FLEET_OK && loaded != 2 * (m->cfg.n_widths - 1))
            st = fleet__error(FLEET_ERR_INVALID_MODEL, "set %d of the mlp's %d weights", loaded,
                              2 * (m->cfg.n_widths - 1));
        if (st == FLEET_OK)
            st = fleet_model_finalize(rep->model);
        m->platform = "fleet";
    }
    if (st != FLEET_OK) {
        st = fleet__error_prefix(st, path);
        goto fail;
    }
    fleet_batcher_config bc = fleet_batcher_config_default();
    bc.max_batch = m->cfg.max_batch;
    bc.max_delay_us = m->cfg.max_delay_us;
    bc.queue_capacity = m->cfg.queue_capacity;
    bc.max_inflight = m->cfg.instances;
    if ((st = fleet_batcher_create(rep->model, &bc, &rep->batcher)) != FLEET_OK) {
        st = fleet__error_prefix(st, m->name);
        goto fail;
    }
    return FLEET_OK;
fail:
    fleet_model_destroy(rep->model);
    rep->model = NULL;
    return st;
}

/* A model's replicas (batchers first: they hold the models), its lock and
 * itself; its completion thread is stopped or was never started. */
static void model_free(fleet__serve_model *m)
{
    for (int r = 0; r < m->n_replicas; r++) {
        fleet_batcher_destroy(m->rep[r].batcher);
        fleet_model_destroy(m->rep[r].model);
    }
    fleet__cond_destroy(&m->cv);
    fleet__mutex_destroy(&m->lock);
    free(m);
}

static fleet_status load_one(const char *dir, const char *name, fleet__serve_model **out)
{
    char path[4096];
    fleet__serve_model *m = fleet__calloc(1, sizeof *m);
    if (m == NULL)
        return fleet__error(FLEET_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(m->name, sizeof m->name, "%s", name);
    fleet__mutex_init(&m->lock);
    fleet__cond_init(&m->cv);
    fleet_status st;
    char err[256] = "";
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s/config.json", dir, name);
    char *text = NULL;
    if (is_file(path) && (text = read_small(path, &len)) == NULL) {
        st = fleet__error(FLEET_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    st = fleet__serve_parse_model_config(text, len, &m->cfg, err, sizeof err);
    free(text);
    if (st != FLEET_OK) {
        st = fleet__error(st, "%s: %s", path, err);
        goto fail;
    }
    for (int r = 0; r < m->cfg.n_devices; r++) {
        if ((st = load_replica(dir, name, m, &m->rep[r], m->cfg.devices[r])) != FLEET_OK)
            goto fail;
        m->n_replicas++;
    }
    m->model = m->rep[0].model;
    m->n_in = fleet_model_input_count(m->model);
    m->n_out = fleet_model_output_count(m->model);
    if ((st = fleet__serve_completion_start(m)) != FLEET_OK)
        goto fail;
    *out = m;
    return FLEET_OK;
fail:
    model_free(m);
    return st;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(fleet__serve_model *const *)a)->name, (*(fleet__serve_model *const *)b)->name);
}

fleet_status fleet__serve_load_models(fleet_server *s)
{
    DIR *d = opendir(s->models_dir);
    if (d == NULL)
        return fleet__error(FLEET_ERR_IO, "fleet_server_create: models folder %s: %s",
                            s->models_dir, strerror(errno));
    s->models = fleet__calloc(MAX_MODELS, sizeof *s->models);
    fleet_status st = s->models ? FLEET_OK : FLEET_ERR_OUT_OF_MEMORY;
    struct dirent *e;
    /* readdir on a stream no other thread uses is thread-safe in glibc;
     * readdir_r is deprecated. */
    // cppcheck-suppress readdirCalled
    while (st == FLEET_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", s->models_dir, e->d_name);
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (!name_ok(e->d_name)) {
            st = fleet__error(FLEET_ERR_INVALID_CONFIG,
                              "fleet_server_create: model folder '%s': a name of A-Z a-z 0-9 _ . - "
                              "(under 128 bytes) is needed",
                              e->d_name);
            break;
        }
        if (s->n_models == MAX_MODELS) {
            st = fleet__error(FLEET_ERR_INVALID_CONFIG, "fleet_server_create: more than %d models",
                              MAX_MODELS);
            break;
        }
        st = load_one(s->models_dir, e->d_name, &s->models[s->n_models]);
        if (st == FLEET_OK)
            s->n_models++;
    }
    closedir(d);
    if (st == FLEET_OK && s->n_models == 0)
        st = fleet__error(FLEET_ERR_INVALID_CONFIG, "fleet_server_create: no model folders in %s",
                          s->models_dir);
    if (st == FLEET_OK)
        qsort(s->models, (size_t)s->n_models, sizeof *s->models, by_name);
    return st;
}

void fleet__serve_free_models(fleet_server *s)
{
    for (int i = 0; i < s->n_models; i++) {
        fleet__serve_model *m = s->models[i];
        for (int r = 0; r < m->n_replicas; r++)
            fleet_batcher_shutdown(m->rep[r].batcher, false);
        fleet__serve_completion_stop(m);
        model_free(m);
    }
    free(s->models);
    s->models = NULL;
    s->n_models = 0;
}

fleet__serve_model *fleet__serve_find_model(fleet_server *s, const char *name, size_t len)
{
    for (int i = 0; i < s->n_models; i++)
        if (strlen(s->models[i]->name) == len && memcmp(s->models[i]->name, name, len) == 0)
            return s->models[i];
    return NULL;
}

char *fleet__serve_model_metadata(const fleet__serve_model *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *versions = cJSON_AddArrayToObject(root, "versions");
    bool ok = root && versions && cJSON_AddStringToObject(root, "name", m->name) &&
              cJSON_AddItemToArray(versions, cJSON_CreateString("1")) &&
              cJSON_AddStringToObject(root, "platform", m->platform);
    for (int io = 0; ok && io < 2; io++) {
        cJSON *list = cJSON_AddArrayToObject(root, io == 0 ? "inputs" : "outputs");
        int n = io == 0 ? m->n_in : m->n_out;
        ok = list != NULL;
        for (int i = 0; ok && i < n; i++) {
            const char *name;
            fleet_dtype dt;
            int ndim;
            int64_t shape[FLEET_MAX_DIMS];
            ok = (io == 0
                      ? fleet_model_input_info(m->model, i, &name, &dt, &ndim, shape)
                      : fleet_model_output_info(m->model, i, &name, &dt, &ndim, shape)) == FLEET_OK;
            cJSON *t = ok ? cJSON_CreateObject() : NULL;
            ok = t && cJSON_AddItemToArray(list, t) && cJSON_AddStringToObject(t, "name", name) &&
                 cJSON_AddStringToObject(t, "datatype", fleet__oip_dtype_name(dt));
            cJSON *sh = ok ? cJSON_AddArrayToObject(t, "shape") : NULL;
            ok = sh != NULL;
            for (int d = 0; ok && d < ndim; d++) /* the batch (and any folded dims): -1 */
                ok = cJSON_AddItemToArray(
                    sh, cJSON_CreateNumber(shape[d] < 0 ? -1.0 : (double)shape[d]));
        }
    }
    char *out = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}
