"""Per-frame arrays kept on disk, so that memory does not grow with the length of a video.

A ``FrameStore`` is an (n, *shape) array whose rows live in an anonymous temporary file (deleted by
the system as soon as it is closed, also when the process dies). Rows are appended while a video is
read and read back in chunks; nothing is memory-mapped, so rows read once do not stay resident.
Landmarks and expressions of a long video go through stores; they never leave the machine and never
outlive the process.

It supports the indexing the pipeline uses (an int, a slice, an integer or boolean array along the
first axis) and ``numpy.asarray``, which reads everything.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import numpy as np

# Frames handled at once by the streamed stages: a few megabytes of landmarks or expressions.
CHUNK_FRAMES = 256


class FrameStore:
    def __init__(self, shape: tuple[int, ...], dtype=np.float32, directory=None):
        self.row_shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self._directory = directory
        self._file = tempfile.TemporaryFile(prefix="dmask-", dir=directory)
        self._n = 0

    # ---- writing
    def append(self, rows: np.ndarray) -> None:
        """Add rows (k, *shape) or one row (*shape) at the end."""
        rows = np.ascontiguousarray(rows, self.dtype).reshape((-1,) + self.row_shape)
        self._write(self._n, rows)
        self._n += len(rows)

    def append_fill(self, count: int, value: float) -> None:
        """Add ``count`` rows filled with ``value``."""
        for start in range(0, count, CHUNK_FRAMES):
            self.append(np.full((min(CHUNK_FRAMES, count - start),) + self.row_shape, value, self.dtype))

    def _write(self, start: int, rows: np.ndarray) -> None:
        data = memoryview(rows).cast("B")
        offset = start * self.row_bytes
        try:
            while data:
                done = os.pwrite(self._file.fileno(), data, offset)
                data, offset = data[done:], offset + done
        except OSError as e:
            where = self._directory or tempfile.gettempdir()
            raise OSError(e.errno, f"cannot write dmask's temporary per-frame data in {where} ({e.strerror}); "
                                   "free some space there or point TMPDIR elsewhere") from None

    # ---- reading
    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop as a new array."""
        start, stop = max(start, 0), min(stop, self._n)
        out = np.empty((max(stop - start, 0),) + self.row_shape, self.dtype)
        view, offset = memoryview(out).cast("B"), start * self.row_bytes
        while view:
            got = os.preadv(self._file.fileno(), [view], offset)
            if got <= 0:
                raise OSError("a dmask temporary file was truncated")
            view, offset = view[got:], offset + got
        return out

    def chunks(self, size: int = CHUNK_FRAMES) -> Iterator[tuple[int, np.ndarray]]:
        """(start, rows) of consecutive chunks of at most ``size`` rows."""
        for start in range(0, self._n, size):
            yield start, self.read(start, start + size)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self._n if key < 0 else 0)
            if not 0 <= i < self._n:
                raise IndexError(f"row {key} outside 0..{self._n}")
            return self.read(i, i + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(self._n)
            return self.read(start, stop)[::step] if step > 0 else np.asarray(self)[key]
        if isinstance(key, tuple):  # rows first, then the rest within them
            if not key:
                return np.asarray(self)
            rows = self[key[0]]
            return rows[key[1:]] if isinstance(key[0], (int, np.integer)) else rows[(slice(None),) + key[1:]]
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        out = np.empty((len(idx),) + self.row_shape, self.dtype)
        # Runs of consecutive rows are read at once.
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        pos = 0
        for run in np.split(idx, breaks) if len(idx) else ():
            out[pos : pos + len(run)] = self.read(int(run[0]), int(run[-1]) + 1)
            pos += len(run)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.read(0, self._n)
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype)

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n,) + self.row_shape

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        return f"FrameStore(shape={self.shape}, dtype={self.dtype})"
