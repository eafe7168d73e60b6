/* onnx/pb.h — the protobuf wire format, read in place.
 *
 * A reader walks the fields of one message: each field is its number, its
 * wire type and its value — a varint, a fixed 32- or 64-bit word, or a
 * length-delimited slice (a nested message, a string, a packed array) of
 * the same buffer. Nothing is copied. Every length is checked against the
 * bytes left in the enclosing message, a varint may not run past 10 bytes,
 * groups (wire types 3 and 4) are refused, and a field number must be in
 * 1..2^29-1. The bytes are untrusted: the reader never reads outside
 * [buf, buf + size) and reports the byte offset of what it refused.
 *
 *     fleet__pb_reader r = fleet__pb_reader_of(msg, base);
 *     fleet__pb_field f;
 *     int got;
 *     while ((got = fleet__pb_next(&r, &f)) > 0)
 *         switch (f.number) { ... }
 *     if (got < 0) ...  // malformed: the error text says where
 */
#ifndef FLEET_ONNX_PB_H
#define FLEET_ONNX_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/status.h"

enum {
    FLEET__PB_VARINT = 0,
    FLEET__PB_FIXED64 = 1,
    FLEET__PB_BYTES = 2,
    FLEET__PB_FIXED32 = 5,
};

/* Bytes inside the buffer being read. */
typedef struct fleet__pb_slice {
    const uint8_t *p;
    size_t n;
} fleet__pb_slice;

typedef struct fleet__pb_reader {
    const uint8_t *p, *end;
    const uint8_t *base; /* the start of the whole buffer, for offsets in errors */
} fleet__pb_reader;

typedef struct fleet__pb_field {
    uint32_t number;
    int wire;
    uint64_t varint;      /* VARINT; FIXED32/FIXED64: the word's bits */
    fleet__pb_slice bytes; /* BYTES */
    size_t offset;        /* of the field's tag, from base */
} fleet__pb_field;

fleet__pb_reader fleet__pb_reader_of(fleet__pb_slice msg, const uint8_t *base);

/* The next field: 1, or 0 at the end of the message, or -1 when the bytes
 * are malformed (fleet_last_error() then says what, and at which byte). */
int fleet__pb_next(fleet__pb_reader *r, fleet__pb_field *f);

/* FLEET_ERR_INVALID_MODEL "onnx: <what> at byte <offset>". */
fleet_status fleet__pb_error(size_t offset, const char *what);

/* The elements of a repeated scalar field, which encoders write packed (one
 * BYTES field) or one field per element: walk them with one iterator over
 * the message, for field `number` of wire type `wire` (VARINT, FIXED32 or
 * FIXED64). */
typedef struct fleet__pb_repeated {
    fleet__pb_reader msg;   /* the rest of the enclosing message        */
    fleet__pb_reader packed; /* inside a packed run, when in one          */
    bool in_packed;
    uint32_t number;
    int wire;
} fleet__pb_repeated;

fleet__pb_repeated fleet__pb_repeated_of(fleet__pb_slice msg, const uint8_t *base, uint32_t number,
                                         int wire);
/* 1 and *value, 0 at the end, -1 malformed (a wrong wire type for the field
 * included). */
int fleet__pb_repeated_next(fleet__pb_repeated *it, uint64_t *value);

/* Decoders of a field's value. */
static inline int64_t fleet__pb_int64(uint64_t v)
{
    return (int64_t)v; /* two's complement, as protobuf's int64/int32 encode */
}

float fleet__pb_float(uint64_t bits);
double fleet__pb_double(uint64_t bits);

#endif /* FLEET_ONNX_PB_H */
