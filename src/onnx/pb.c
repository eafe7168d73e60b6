/* onnx/pb.c — the protobuf wire format, read in place (onnx/pb.h). */
#include "onnx/pb.h"

#include <string.h>

#include "core/error.h"

#define FIELD_NUMBER_MAX ((1u << 29) - 1)

fleet_status fleet__pb_error(size_t offset, const char *what)
{
    return fleet__error(FLEET_ERR_INVALID_MODEL, "onnx: %s at byte %zu", what, offset);
}

fleet__pb_reader fleet__pb_reader_of(fleet__pb_slice msg, const uint8_t *base)
{
    return (fleet__pb_reader){.p = msg.p, .end = msg.p + msg.n, .base = base};
}

static size_t offset_of(const fleet__pb_reader *r, const uint8_t *p)
{
    return (size_t)(p - r->base);
}

/* A varint at r->p: 1, or -1 (truncated, or longer than 10 bytes). */
static int varint(fleet__pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *start = r->p;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p == r->end) {
            fleet__pb_error(offset_of(r, start), "truncated varint");
            return -1;
        }
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0x7e) != 0) { /* the tenth byte holds one bit */
            fleet__pb_error(offset_of(r, start), "varint over 64 bits");
            return -1;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return 1;
        }
    }
    fleet__pb_error(offset_of(r, start), "varint longer than 10 bytes");
    return -1;
}

static int fixed(fleet__pb_reader *r, int bytes, uint64_t *out)
{
    if ((size_t)(r->end - r->p) < (size_t)bytes) {
        fleet__pb_error(offset_of(r, r->p), "truncated fixed-width value");
        return -1;
    }
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) /* little-endian on the wire */
        v = v << 8 | r->p[i];
    r->p += bytes;
    *out = v;
    return 1;
}

int fleet__pb_next(fleet__pb_reader *r, fleet__pb_field *f)
{
    if (r->p == r->end)
        return 0;
    const uint8_t *tag_at = r->p;
    uint64_t tag;
    if (varint(r, &tag) < 0)
        return -1;
    f->offset = offset_of(r, tag_at);
    f->wire = (int)(tag & 7);
    uint64_t number = tag >> 3;
    if (number == 0 || number > FIELD_NUMBER_MAX) {
        fleet__pb_error(f->offset, "field number 0 or over 2^29-1");
        return -1;
    }
    f->number = (uint32_t)number;
    f->varint = 0;
    f->bytes = (fleet__pb_slice){NULL, 0};
    switch (f->wire) {
    case FLEET__PB_VARINT: return varint(r, &f->varint);
    case FLEET__PB_FIXED64: return fixed(r, 8, &f->varint);
    case FLEET__PB_FIXED32: return fixed(r, 4, &f->varint);
    case FLEET__PB_BYTES: {
        uint64_t n;
        if (varint(r, &n) < 0)
            return -1;
        if (n > (uint64_t)(r->end - r->p)) {
            fleet__pb_error(f->offset, "a length past the end of its message");
            return -1;
        }
        f->bytes = (fleet__pb_slice){r->p, (size_t)n};
        r->p += n;
        return 1;
    }
    default:
        fleet__pb_error(f->offset, "a group or unknown wire type");
        return -1;
    }
}

fleet__pb_repeated fleet__pb_repeated_of(fleet__pb_slice msg, const uint8_t *base, uint32_t number,
                                         int wire)
{
    fleet__pb_repeated it;
    memset(&it, 0, sizeof it);
    it.msg = fleet__pb_reader_of(msg, base);
    it.number = number;
    it.wire = wire;
    return it;
}

static int element(fleet__pb_repeated *it, fleet__pb_reader *r, uint64_t *value)
{
    switch (it->wire) {
    case FLEET__PB_VARINT: return varint(r, value);
    case FLEET__PB_FIXED32: return fixed(r, 4, value);
    default: return fixed(r, 8, value);
    }
}

int fleet__pb_repeated_next(fleet__pb_repeated *it, uint64_t *value)
{
    for (;;) {
        if (it->in_packed) {
            if (it->packed.p < it->packed.end)
                return element(it, &it->packed, value);
            it->in_packed = false;
        }
        fleet__pb_field f;
        int got = fleet__pb_next(&it->msg, &f);
        if (got <= 0)
            return got;
        if (f.number != it->number)
            continue;
        if (f.wire == FLEET__PB_BYTES) {
            it->packed = fleet__pb_reader_of(f.bytes, it->msg.base);
            it->in_packed = true;
            continue;
        }
        if (f.wire != it->wire) {
            fleet__pb_error(f.offset, "a repeated field with the wrong wire type");
            return -1;
        }
        *value = f.varint;
        return 1;
    }
}

float fleet__pb_float(uint64_t bits)
{
    uint32_t b = (uint32_t)bits;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

double fleet__pb_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}
