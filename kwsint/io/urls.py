"""Inputs named by URL (``SCHEME://...``), read through fsspec by byte ranges: a .npy file by its header, then the
rows a reader asks for; a .wav file through a seekable file object. Never the whole file in memory.

fsspec (``pip install 'kwsint[cluster]'``) opens ``file://``, ``memory://`` and, with their backends installed,
``http(s)://`` (aiohttp), ``s3://`` (s3fs), ``gs://`` (gcsfs) and the rest. Every failure (fsspec missing, no
backend for the protocol, an unreachable or missing file, a read cut short) is a one-line ``FormatError``
naming the URL, never a traceback: fsspec's backends raise their own exception types, all caught here.
"""

from __future__ import annotations

import math
import os
from pathlib import PurePosixPath

import numpy as np

from ..errors import FormatError

INSTALL = "pip install 'kwsint[cluster]'"


def is_url(name: str | os.PathLike) -> bool:
    """Whether an input names a URL: a ``str`` with ``://`` in it (a ``Path`` never is one)."""
    return isinstance(name, str) and "://" in name


def suffix(url: str) -> str:
    """The suffix (lower case) of the URL's path: its query string and fragment are not part of it."""
    path = url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
    return PurePosixPath(path).suffix.lower()


def version(url: str) -> str:
    """What tells the file at ``url`` from a changed one: what its filesystem says of it (fsspec's ``info``: its
    size and, where the server gives them, its ETag and modification time), or ``""`` where it cannot be asked
    from this machine (a cluster's workers may reach what the driver cannot)."""
    try:
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(url)
        info = fs.info(path)
    except Exception:  # noqa: BLE001 - fsspec missing, a backend's own error: nothing known but the URL
        return ""
    return repr(sorted((str(k), str(v)) for k, v in info.items()))


def check_npy_magic(name: str, magic: bytes) -> None:
    """FormatError naming ``name`` unless ``magic``, a file's first bytes, are a .npy file's."""
    expected = np.lib.format.MAGIC_PREFIX
    if magic != expected:
        raise FormatError(f"{name}: magic: expected a .npy file ({expected!r}), got {magic!r}")


def _reason(e: BaseException) -> str:
    """An exception as one line of text."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class UrlFile:
    """A read-only, seekable file at a URL (fsspec's), whose failures are FormatErrors naming ``name``; ``size``
    is the file's size in bytes."""

    def __init__(self, url: str, name: str | None = None):
        self.url, self.name = url, name or url
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise FormatError(f"{self.name}: url: reading a URL needs fsspec: {INSTALL}") from None
        try:
            self._fs, self._path = url_to_fs(url)
        except (ImportError, ValueError) as e:  # a backend not installed, a protocol fsspec does not know
            raise FormatError(f"{self.name}: protocol: expected one fsspec can open (its backend installed), "
                              f"got {_reason(e)}") from None
        except Exception as e:  # noqa: BLE001 - a backend's own error, as one line
            raise FormatError(f"{self.name}: url: expected a URL fsspec can open, got {_reason(e)}") from None
        try:
            self._f = self._fs.open(self._path, "rb")
        except OSError as e:
            raise FormatError(f"{self.name}: file: expected a readable file, got {e.strerror or _reason(e)}") from None
        except Exception as e:  # noqa: BLE001 - an unreachable host, a refused request: the backend's own types
            raise FormatError(f"{self.name}: file: expected a readable file, got {_reason(e)}") from None
        self._size: int | None = None

    def _failed(self, what: str, e: BaseException) -> FormatError:
        return FormatError(f"{self.name}: {what}: expected the file's bytes, got {_reason(e)}")

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except Exception as e:  # noqa: BLE001
            raise self._failed("read", e) from None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self._f.seek(offset, whence)
        except Exception as e:  # noqa: BLE001
            raise self._failed("seek", e) from None

    def tell(self) -> int:
        return self._f.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        """The file's size in bytes (the file object's, else the filesystem's)."""
        if self._size is None:
            size = getattr(self._f, "size", None)
            if not isinstance(size, int):
                try:
                    size = self._fs.size(self._path)
                except Exception as e:  # noqa: BLE001
                    raise self._failed("size", e) from None
            if not isinstance(size, int):
                raise FormatError(f"{self.name}: size: expected the file's size from its server, got {size!r}")
            self._size = size
        return self._size

    def close(self) -> None:
        try:
            self._f.close()
        except Exception:  # noqa: BLE001 - nothing more is read from it
            pass

    def __del__(self) -> None:  # a UrlArray dropped unclosed (a frame range read, a stream not read to its end)
        if hasattr(self, "_f"):
            self.close()

    def __enter__(self) -> UrlFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class UrlArray:
    """A .npy file's 2-D array at a URL, read by rows: ``a[start:stop]`` (step 1) reads those rows' bytes only,
    ``a[i, j]`` one value. ``shape``, ``dtype``, ``ndim`` and ``len`` come from the header; the file holds the
    bytes the header declares (checked by ``open_npy``). Rows of other arrays are not read (the readers refuse
    anything but (T, features) first)."""

    def __init__(self, f: UrlFile, shape: tuple[int, ...], fortran: bool, dtype: np.dtype, offset: int):
        self._f, self.shape, self._fortran, self.dtype, self._offset = f, shape, fortran, dtype, offset
        self.ndim = len(shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, tuple):
            i, j = key
            return self[i : i + 1][0, j]
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("rows: expected a step of 1")
        count, width, size = max(stop - start, 0), int(np.prod(self.shape[1:])), self.dtype.itemsize
        if self._fortran:  # column after column: each column's rows are one range
            columns = [self._read(self._offset + (c * self.shape[0] + start) * size, count * size)
                       for c in range(width)]
            flat = np.stack([np.frombuffer(b, self.dtype) for b in columns], axis=1) if width else \
                np.zeros((count, 0), self.dtype)
            return flat.reshape((count, *self.shape[1:]))
        data = self._read(self._offset + start * width * size, count * width * size)
        return np.frombuffer(data, self.dtype).reshape((count, *self.shape[1:]))

    def _read(self, offset: int, n: int) -> bytes:
        if n == 0:
            return b""
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:
            raise FormatError(f"{self._f.name}: data: expected {n} bytes at byte {offset}, got {len(data)}: the file "
                              "changed while it was read")
        return data

    def close(self) -> None:
        self._f.close()


# What numpy's header readers raise on a malformed header (found by editing every header byte of a local file).
_HEADER_ERRORS = (ValueError, SyntaxError, TypeError, OverflowError, EOFError, OSError)


def open_npy(url: str, name: str | None = None) -> UrlArray:
    """The array of the .npy file at ``url``, read by rows (``UrlArray``), its header checked as ``np.load``
    checks it (and no object dtype: nothing is unpickled), and its size against the file's. FormatError naming
    ``name`` (the URL by default) otherwise."""
    f = UrlFile(url, name)
    try:
        return _read_npy_header(f)
    except BaseException:
        f.close()
        raise


def _read_npy_header(f: UrlFile) -> UrlArray:
    import tokenize

    name = f.name
    fmt = np.lib.format
    check_npy_magic(name, f.read(len(fmt.MAGIC_PREFIX)))
    f.seek(0)
    try:
        npy_version = fmt.read_magic(f)
        if npy_version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif npy_version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        elif npy_version == (3, 0) and hasattr(fmt, "_read_array_header"):
            shape, fortran, dtype = fmt._read_array_header(f, npy_version)
        else:
            raise ValueError(f"unsupported .npy format version {npy_version}")
    except FormatError:
        raise
    except (*_HEADER_ERRORS, tokenize.TokenError) as e:
        raise FormatError(f"{name}: npy: expected a readable .npy array, got {_reason(e)}") from None
    if dtype.hasobject:
        raise FormatError(f"{name}: npy: expected a readable .npy array, got ValueError: Python objects in dtype "
                          f"{dtype}: never unpickled")
    offset = f.tell()
    need = math.prod(shape) * dtype.itemsize  # Python ints: a huge declared shape cannot wrap around
    have = f.size - offset
    if have < need:
        raise FormatError(f"{name}: data: expected the header's {shape} array ({need} bytes), got {have} bytes: "
                          "the file is truncated")
    return UrlArray(f, tuple(shape), fortran, dtype, offset)
