"""Minimal safetensors reader/writer for the PyTorch peers (no `safetensors` package needed).

File layout: u64 little-endian header length N, then N bytes of JSON
({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}),
then the raw little-endian tensor data; offsets are relative to the end of the header.
"""
import json
import struct

import torch

DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def load_file(path):
    """Return {name: torch.Tensor} (CPU, contiguous, owning its memory) for every tensor in the file."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = info["shape"]
        count = 1
        for s in shape:
            count *= s
        if count == 0:
            out[name] = torch.empty(shape, dtype=dtype)
            continue
        buf = bytearray(data[base + begin : base + end])  # writable copy, so torch owns valid memory
        out[name] = torch.frombuffer(buf, dtype=dtype).reshape(shape).clone()
    return out


def save_file(tensors, path, metadata=None):
    """Write {name: tensor} as safetensors (tensors sorted by name, 8-byte aligned header)."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)
