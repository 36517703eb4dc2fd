"""Types of the nnc._nnc extension module (PyO3)."""
import os
from typing import Optional, Sequence, Union

Source = Union[bytes, bytearray, str, os.PathLike[str]]

__version__: str

class NncError(Exception): ...
class FormatError(NncError): ...
class LimitError(NncError): ...
class InputError(NncError): ...
class UnsupportedError(NncError): ...
class InvalidOptionsError(NncError): ...
class NotFoundError(NncError): ...
class NncIOError(NncError): ...

Base = Union[str, os.PathLike[str], Sequence[Union[str, os.PathLike[str]]], None]

def decode_model(
    src: Source, limits: Optional[dict[str, int]] = None, base: Base = None
) -> bytes: ...
def decode_file(
    src: Union[str, os.PathLike[str]],
    dst: Union[str, os.PathLike[str]],
    inline_external: bool = False,
    limits: Optional[dict[str, int]] = None,
    base: Base = None,
) -> None: ...
def encode(
    src: Source,
    output: Union[str, os.PathLike[str], None] = None,
    *,
    lossless: bool = False,
    quality: str = "default",
    quantizer: str = "deadzone",
    delta: float = 0.5,
    mu: float = 255.0,
    exp_bits: int = 5,
    man_bits: int = 10,
    step: Optional[float] = None,
    per_tensor: Optional[float] = None,
    levels_bits: Optional[int] = None,
    range: tuple[float, float] = (-1.0, 1.0),
    granularity: str = "channel",
    rdo: float = 0.0,
    fine_bits: Optional[int] = None,
    kernel_sums: bool = False,
    min_elements: int = 1024,
    all_tensors: bool = False,
    records_only: bool = False,
    base: Base = None,
) -> Optional[bytes]: ...

class Archive:
    def __init__(
        self, src: Source, limits: Optional[dict[str, int]] = None, base: Base = None
    ) -> None: ...
    def names(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def tensor(self, name: str) -> tuple[str, int, Optional[str], list[int], bytearray]: ...
    def decode_model(self) -> bytes: ...
