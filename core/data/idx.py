"""The IDX file format of MNIST: a big-endian header (magic, dimensions) and raw bytes.

    magic = 0x00 0x00 <type> <ndim>   (type 0x08 = unsigned byte)
    ndim big-endian int32 sizes, then the values in C order.

Files whose name ends in ``.gz`` are read and written gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from core.files import atomic_write_bytes

UBYTE = 0x08


class IDXError(ValueError):
    """A file that is not a well-formed unsigned-byte IDX file."""


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array of any rank ≥ 1."""
    if array.dtype != np.uint8 or array.ndim < 1:
        raise IDXError(f"IDX needs a uint8 array of rank >= 1, got {array.dtype} of rank {array.ndim}")
    header = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """The uint8 array held in IDX bytes; :class:`IDXError` names what is wrong."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UBYTE:
        raise IDXError(f"{name} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_len:
        raise IDXError(f"{name} has a truncated IDX header")
    shape = struct.unpack(f">{ndim}i", data[4:header_len])
    expected = header_len + int(np.prod(shape))
    if len(data) != expected:
        raise IDXError(f"{name} holds {len(data)} bytes but its header {shape} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file atomically (gzip-compressed if the name ends in .gz)."""
    data = encode_idx(array)
    return atomic_write_bytes(path, gzip.compress(data) if str(path).endswith(".gz") else data)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise IDXError(f"{path} is not a readable gzip file ({e})") from None
    return decode_idx(data, str(path))
