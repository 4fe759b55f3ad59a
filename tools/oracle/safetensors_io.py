"""Minimal safetensors writer (the format is simple; no extra package needed)."""
import json
import struct

import numpy as np
import torch

DTYPES = {torch.float32: ("F32", np.float32), torch.int32: ("I32", np.int32), torch.float16: ("F16", np.float16),
          torch.int64: ("I64", np.int64)}


def save(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        code, np_type = DTYPES[t.dtype]
        data = t.numpy().astype(np_type, copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
