#!/usr/bin/env python3
"""Write the seed corpus of fuzz/safetensors_fuzz.c into fuzz/corpus/safetensors/.

Small valid files (each part of the format once: dtypes, a scalar, a zero
dimension, zero-size tensors, escapes, metadata, padding) and invalid ones
(one corruption each). Rerun after changing it; the files are committed.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def pack(header, data=b"", length=None):
    h = header.encode("utf-8") if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def tensors(entries, metadata=None, pad=0):
    """entries: (name, dtype, shape, nbytes) laid out back to back."""
    hdr, off, data = {}, 0, b""
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dtype, shape, nbytes in entries:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        data += bytes((off + i) * 7 + 1 & 0xFF for i in range(nbytes))
        off += nbytes
    return pack(json.dumps(hdr, separators=(",", ":")) + " " * pad, data)


FILES = {
    "valid_three": tensors([("w1", "F32", [2, 3], 24), ("scale", "I64", [], 8),
                            ("empty", "F16", [4, 0], 0)], metadata={"format": "pt"}),
    "valid_empty": pack("{}"),
    "valid_metadata_only": pack('{"__metadata__":{"a":"b","c":"\\u00e9\\n"}}'),
    "valid_dtypes": tensors([("d", "F64", [3], 24), ("b", "BOOL", [2, 2], 4),
                             ("q", "F4", [2, 3], 3), ("e", "F8_E4M3", [5], 5),
                             ("h", "BF16", [1] * 8, 2), ("u", "U16", [2], 4),
                             ("i", "I32", [1, 1], 4)]),
    "valid_padded": tensors([("x", "U8", [7], 7)], pad=5),
    "valid_zero_size": pack('{"z1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},'
                            '"z2":{"dtype":"F32","shape":[9223372036854775807,0],"data_offsets":[4,4]},'
                            '"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', b"\1\2\3\4"),
    "valid_escapes": pack('{"a\\"b\\\\c\\/d\\ne\\u00e9\\ud83d\\ude00\xc3\xbc":'
                          '{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                          '"":{"dtype":"U8","shape":[],"data_offsets":[1,2]}}'.encode("latin-1"), b"\1\2"),
    "valid_whitespace": pack(' {\n\t"x" : { "shape" : [ 2 ] , "data_offsets" : [ 0 , 2 ] , '
                             '"dtype" : "U8" } ,\r\n "__metadata__" : { } } ', b"\1\2"),
    "invalid_overlap": pack('{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},'
                            '"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}', bytes(12)),
    "invalid_hole": pack('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                         '"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}', bytes(12)),
    "invalid_size": pack('{"w1":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}}', bytes(12)),
    "invalid_duplicate": pack('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                              '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', bytes(2)),
    "invalid_nested": pack('{"a":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,4]}}', bytes(4)),
    "invalid_numel": pack('{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}',
                          bytes(4)),
    "invalid_float": pack('{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', bytes(4)),
    "invalid_header_len": pack("{}", length=1000),
    "invalid_truncated": tensors([("w1", "F32", [2, 3], 24)])[:-5],
    "invalid_bad_escape": pack('{"a\\q":{}}'),
}

os.makedirs(OUT, exist_ok=True)
for name, blob in FILES.items():
    assert len(blob) < 4096, name
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(blob)
print(f"wrote {len(FILES)} files to {OUT}")
