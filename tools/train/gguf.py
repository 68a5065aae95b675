"""A small GGUF v3 writer: metadata and F32 tensors, enough for llama.cpp to load the files.

tools/train/export.ts re-types the tensors (F16, Q8_0, Q4_0) with tokenwise's own byte-exact
quantizers, so this side only ever writes F32.
"""
import struct

import numpy as np

ALIGNMENT = 32
GGML_TYPE_F32 = 0

# GGUF metadata value types
UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9


def _string(s):
    data = s.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(kind, value):
    if kind == UINT32:
        return struct.pack("<I", value)
    if kind == INT32:
        return struct.pack("<i", value)
    if kind == FLOAT32:
        return struct.pack("<f", value)
    if kind == BOOL:
        return struct.pack("<B", 1 if value else 0)
    if kind == STRING:
        return _string(value)
    raise ValueError(f"unsupported GGUF value type {kind}")


class GGUFWriter:
    def __init__(self):
        self.metadata = []  # (key, kind, value, element kind for arrays)
        self.tensors = []  # (name, float32 array)

    def add(self, key, kind, value):
        self.metadata.append((key, kind, value, None))

    def add_array(self, key, element_kind, values):
        self.metadata.append((key, ARRAY, list(values), element_kind))

    def add_tensor(self, name, array):
        self.tensors.append((name, np.ascontiguousarray(array, dtype=np.float32)))

    def write(self, path):
        out = bytearray(b"GGUF")
        out += struct.pack("<IQQ", 3, len(self.tensors), len(self.metadata))
        for key, kind, value, element_kind in self.metadata:
            out += _string(key) + struct.pack("<I", kind)
            if kind == ARRAY:
                out += struct.pack("<IQ", element_kind, len(value))
                for v in value:
                    out += _value(element_kind, v)
            else:
                out += _value(kind, value)
        offset = 0
        for name, array in self.tensors:
            # ggml lists dimensions fastest first: a PyTorch [rows, cols] matrix is ne = [cols, rows].
            dims = list(reversed(array.shape))
            out += _string(name) + struct.pack("<I", len(dims))
            out += b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", GGML_TYPE_F32, offset)
            offset += (array.nbytes + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        out += b"\0" * (-len(out) % ALIGNMENT)
        for _, array in self.tensors:
            data = array.tobytes()
            out += data + b"\0" * (-len(data) % ALIGNMENT)
        with open(path, "wb") as f:
            f.write(out)
