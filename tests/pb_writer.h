/* tests/pb_writer.h — a protobuf wire-format writer for tests: builds the
 * ONNX messages (and malformed ones) that the reader is checked on.
 *
 *     pbw node = {0};
 *     pbw_str(&node, 4, "Relu");          // field 4, a string
 *     pbw graph = {0};
 *     pbw_msg(&graph, 1, &node);          // field 1, a nested message
 *     ...
 *     pbw_free(&node);
 */
#ifndef FLEET_TEST_PB_WRITER_H
#define FLEET_TEST_PB_WRITER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct pbw {
    uint8_t *p;
    size_t n, cap;
} pbw;

static inline void pbw_raw(pbw *w, const void *data, size_t n)
{
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n)
            cap *= 2;
        w->p = realloc(w->p, cap);
        ASSERT_TRUE(w->p != NULL);
        w->cap = cap;
    }
    if (n > 0)
        memcpy(w->p + w->n, data, n);
    w->n += n;
}

static inline void pbw_varint_raw(pbw *w, uint64_t v)
{
    uint8_t b[10];
    int n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    pbw_raw(w, b, (size_t)n);
}

static inline void pbw_tag(pbw *w, uint32_t number, int wire)
{
    pbw_varint_raw(w, (uint64_t)number << 3 | (uint64_t)wire);
}

static inline void pbw_varint(pbw *w, uint32_t number, uint64_t v)
{
    pbw_tag(w, number, 0);
    pbw_varint_raw(w, v);
}

static inline void pbw_bytes(pbw *w, uint32_t number, const void *data, size_t n)
{
    pbw_tag(w, number, 2);
    pbw_varint_raw(w, n);
    pbw_raw(w, data, n);
}

static inline void pbw_str(pbw *w, uint32_t number, const char *s)
{
    pbw_bytes(w, number, s, strlen(s));
}

static inline void pbw_msg(pbw *w, uint32_t number, const pbw *m)
{
    pbw_bytes(w, number, m->p, m->n);
}

static inline void pbw_fixed32(pbw *w, uint32_t number, uint32_t bits)
{
    pbw_tag(w, number, 5);
    uint8_t b[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                    (uint8_t)(bits >> 24)};
    pbw_raw(w, b, 4);
}

static inline void pbw_float(pbw *w, uint32_t number, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    pbw_fixed32(w, number, bits);
}

/* A packed repeated varint field. */
static inline void pbw_packed_varints(pbw *w, uint32_t number, const int64_t *v, int n)
{
    pbw inner = {0};
    for (int i = 0; i < n; i++)
        pbw_varint_raw(&inner, (uint64_t)v[i]);
    pbw_msg(w, number, &inner);
    free(inner.p);
}

static inline void pbw_free(pbw *w)
{
    free(w->p);
    *w = (pbw){0};
}

#endif /* FLEET_TEST_PB_WRITER_H */
