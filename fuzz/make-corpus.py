#!/usr/bin/env python3
"""Write the seed corpora of fuzz/safetensors_fuzz.c and fuzz/npy_fuzz.c into
fuzz/corpus/safetensors/ and fuzz/corpus/npy/.

Small valid files (each part of the format once: for safetensors dtypes, a
scalar, a zero dimension, zero-size tensors, escapes, metadata, padding; for
.npy each dtype fleet reads, each format version, a scalar, an empty array,
the spellings numpy and older writers use) and invalid ones (one corruption
each). Rerun after changing it; the files are committed.
"""
import json
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


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



def npy(dict_text, data=b"", major=1, pad=True, length=None):
    """A .npy file: the preamble of format major.0, the header dict (padded
    with blanks and a newline to 64 bytes as numpy pads it), the data."""
    pre = 10 if major == 1 else 12
    h = dict_text.encode("ascii")
    if pad:
        h += b" " * ((-(pre + len(h) + 1)) % 64) + b"\n"
    n = len(h) if length is None else length
    size = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, 0]) + size + h + data


def npy_dict(descr, shape, fortran="False"):
    return f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}"


NPY_FILES = {
    "valid_f4": npy(npy_dict("<f4", "(2, 3)"), struct.pack("<6f", 1, -2, 0.5, 0, 3, -0.25)),
    "valid_f2_v2": npy(npy_dict("<f2", "(4,)"), struct.pack("<4H", 0x3C00, 0xC000, 0x7C00, 1),
                       major=2),
    "valid_i4_v3": npy(npy_dict("<i4", "(1, 2, 1)"), struct.pack("<2i", -7, 2**31 - 1), major=3),
    "valid_i8": npy(npy_dict("<i8", "(3,)"), struct.pack("<3q", -1, 2**40, 2**63 - 1)),
    "valid_b1": npy(npy_dict("|b1", "(2, 2)"), bytes([0, 1, 2, 255])),
    "valid_f8": npy(npy_dict("<f8", "(2,)"), struct.pack("<2d", 0.1, 1e300)),
    "valid_scalar": npy(npy_dict("<f4", "()"), struct.pack("<f", 2.5)),
    "valid_empty": npy(npy_dict("<i8", "(0, 5)")),
    "invalid_empty_overflow": npy(npy_dict("<i8", "(9223372036854775807, 0)")),
    "valid_8_dims": npy(npy_dict("<f4", "(1, 1, 1, 1, 1, 1, 1, 2)"), bytes(8)),
    "valid_spellings": npy("{\"shape\":(2L,3L,),\t\"descr\":\"|b1\",\n\"fortran_order\":False}",
                           bytes(6), pad=False),
    "invalid_fortran": npy(npy_dict("<f4", "(2, 3)", fortran="True"), bytes(24)),
    "invalid_big_endian": npy(npy_dict(">f4", "(2,)"), bytes(8)),
    "invalid_not_tuple": npy(npy_dict("<f4", "(3)"), bytes(12)),
    "invalid_overflow": npy(npy_dict("<f4", "(4294967296, 4294967296)"), bytes(4)),
    "invalid_truncated": npy(npy_dict("<i8", "(3,)"), bytes(20)),
    "invalid_header_len": npy(npy_dict("<f4", "(1,)"), bytes(4), length=1000),
    "invalid_nine_dims": npy(npy_dict("<f4", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), bytes(4)),
}

for corpus, files, ext in (("safetensors", FILES, ".safetensors"), ("npy", NPY_FILES, ".npy")):
    out = os.path.join(CORPUS, corpus)
    os.makedirs(out, exist_ok=True)
    for name, blob in files.items():
        assert len(blob) < 4096, name
        with open(os.path.join(out, name + ext), "wb") as f:
            f.write(blob)
    print(f"wrote {len(files)} files to {out}")
