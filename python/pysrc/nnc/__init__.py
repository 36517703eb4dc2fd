"""nnc: decode nnc-compressed ONNX models, straight into onnxruntime or tensor by tensor.

    import nnc, onnxruntime
    session = onnxruntime.InferenceSession(nnc.decode_model("model.nnc"))   # no file written

    with nnc.open("model.nnc") as tensors:          # lazy: one record read per tensor
        w = tensors["conv1.weight"]                  # numpy.ndarray

    nnc.encode("model.onnx", "model.nnc", quality="high")
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Optional, Sequence, Union

import numpy as np

from . import _nnc
from ._nnc import (
    FormatError,
    InputError,
    InvalidOptionsError,
    LimitError,
    NncError,
    NncIOError,
    NotFoundError,
    UnsupportedError,
)

__version__ = _nnc.__version__
__all__ = [
    "decode_model",
    "decode_file",
    "encode",
    "open",
    "Tensors",
    "NncError",
    "FormatError",
    "LimitError",
    "InputError",
    "UnsupportedError",
    "InvalidOptionsError",
    "NotFoundError",
    "NncIOError",
]

Source = Union[bytes, bytearray, str, "os.PathLike[str]"]


Base = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], None]


def decode_model(src: Source, limits: Optional[dict] = None, base: Base = None) -> bytes:
    """Decode a whole .nnc file (a path, or its bytes) to the bytes of the ONNX model.

    External tensors are inlined, so the bytes go straight into
    ``onnxruntime.InferenceSession(...)`` without a file. ``limits`` overrides decoder limits
    by name (``max_alloc``, ``max_tensors``, ...). ``base``: for an update (a file coded
    against a model the receiver has), that model's .onnx or .nnc, or a list of files (a
    chain, root first); an update without its base, or with another, raises
    :class:`FormatError` (``base-missing``, ``base-mismatch``). Raises a subclass of
    :class:`NncError`.
    """
    return _nnc.decode_model(src, limits, base)


def decode_file(
    src: Union[str, "os.PathLike[str]"],
    dst: Union[str, "os.PathLike[str]"],
    inline_external: bool = False,
    limits: Optional[dict] = None,
    base: Base = None,
) -> None:
    """Decode the .nnc file ``src`` to the ONNX file ``dst``.

    External tensors go to their files beside ``dst`` (or into the model with
    ``inline_external``), each written as soon as it is decoded, so memory stays near the
    largest tensor whatever the model's size. Every file is written under a temporary name and
    renamed only when all succeeded. ``base`` as for :func:`decode_model`. Raises a subclass of
    :class:`NncError`.
    """
    _nnc.decode_file(src, dst, inline_external, limits, base)


def encode(src: Source, output: Union[str, "os.PathLike[str]", None] = None, **options) -> Optional[bytes]:
    """Encode an ONNX model (a path, or its bytes) to .nnc.

    With ``output`` the file is written and None returned; without it the .nnc bytes are returned. Options are those of ``nnc encode``:
    ``lossless``, ``quality`` ("high", "default", "small"), ``quantizer`` ("deadzone",
    "midtread", "midrise", "mulaw", "minifloat"), ``delta``, ``mu``, ``exp_bits``,
    ``man_bits``, ``step``, ``per_tensor``, ``levels_bits``, ``range``, ``granularity``
    ("channel", "tensor"), ``rdo``, ``fine_bits``, ``kernel_sums``, ``min_elements``, ``all_tensors``,
    ``records_only``, and ``base`` (an update against that model: its .onnx or .nnc, or a
    chain; tensors it holds as they are become references). Out-of-range values raise
    :class:`InvalidOptionsError`. Two defaults differ from ``nnc encode``'s: steps follow the
    weight-domain rule (the model is not run), and ``fine_bits`` is None (biases and
    normalization parameters exact; ``nnc encode`` rounds them to 12 mantissa bits).
    """
    return _nnc.encode(src, output, **options)


class Tensors(Mapping):
    """A lazy, read-only mapping of tensor names to numpy arrays over one .nnc file.

    Each lookup decodes that tensor alone through the file's index. Arrays are fresh copies
    (writable, C order). Tensors whose data type numpy lacks (bfloat16, 8-bit floats, strings)
    raise :class:`UnsupportedError`; ``raw(name)`` gives their bytes.
    """

    def __init__(self, src: Source, limits: Optional[dict] = None, base: Base = None):
        self._archive = _nnc.Archive(src, limits, base)
        self._names = self._archive.names()
        self._set = set(self._names)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._set:
            raise KeyError(name)
        _, onnx_dtype, np_dtype, dims, data = self._archive.tensor(name)
        if np_dtype is None:
            raise UnsupportedError(f"tensor {name!r}: numpy has no dtype for ONNX type {onnx_dtype}")
        return np.frombuffer(data, dtype=np.dtype(np_dtype)).reshape(dims)

    def raw(self, name: str) -> tuple[int, list[int], bytearray]:
        """(ONNX data type code, dims, canonical little-endian bytes) of one tensor."""
        if name not in self._set:
            raise KeyError(name)
        _, onnx_dtype, _, dims, data = self._archive.tensor(name)
        return onnx_dtype, dims, data

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._set

    def decode_model(self) -> bytes:
        """The whole model as ONNX bytes (as :func:`decode_model`)."""
        return self._archive.decode_model()

    def close(self) -> None:
        """Release the file (further lookups fail)."""
        self._archive = None

    def __enter__(self) -> "Tensors":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(src: Source, limits: Optional[dict] = None, base: Base = None) -> Tensors:  # noqa: A001 - as gzip.open
    """Open a .nnc file (a path, mapped; or its bytes) as a lazy mapping of names to arrays.

    ``base`` as for :func:`decode_model`."""
    return Tensors(src, limits, base)
