"""DirectFile: the same bytes as a buffered write, around the page cache where the kernel allows."""
import ctypes
import errno
import mmap
import os

import numpy as np
import pytest

from dhs_gen import storage
from dhs_gen.io import direct_file
from dhs_gen.io.direct_file import BLOCK_BYTES, CHUNK_BYTES, DirectFile

pytestmark = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this platform")


def _payload(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _cached_pages(path) -> int:
    """Pages of ``path`` in the page cache (mincore(2) of a fresh read-only map; nothing is read)."""
    size = os.path.getsize(path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    vec = (ctypes.c_ubyte * -(-size // mmap.PAGESIZE))()
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr != ctypes.c_void_p(-1).value, os.strerror(ctypes.get_errno())
        try:
            assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(v & 1 for v in vec)


@pytest.mark.parametrize("sizes", [[0], [1], [BLOCK_BYTES - 1, 1, 7], [CHUNK_BYTES], [CHUNK_BYTES - 3, 5],
                                   [123_457] * 150])
def test_the_file_holds_exactly_the_bytes_written(tmp_path, sizes):
    chunks = [_payload(n, seed=k) for k, n in enumerate(sizes)]
    path = str(tmp_path / "f.bin")
    with DirectFile(path) as fh:
        for chunk in chunks:
            assert fh.write(chunk) == len(chunk)
        assert fh.tell() == sum(sizes)
    assert open(path, "rb").read() == b"".join(chunks)


def test_flush_mid_file_then_more_writes(tmp_path):
    """A flush writes the padded tail and truncates; later writes overwrite the padding."""
    a, b, c = _payload(5000, 1), _payload(CHUNK_BYTES, 2), _payload(10, 3)
    path = str(tmp_path / "f.bin")
    with DirectFile(path) as fh:
        fh.write(a)
        fh.flush()
        assert open(path, "rb").read() == a
        fh.write(memoryview(b))
        fh.flush()
        assert os.path.getsize(path) == len(a) + len(b)
        fh.write(bytearray(c))
    assert open(path, "rb").read() == a + b + c


def test_written_pages_stay_out_of_the_page_cache(tmp_path):
    data = _payload(6 << 20)
    direct = str(tmp_path / "direct.bin")
    with DirectFile(direct) as fh:
        if not fh.direct:
            pytest.skip("this file system refuses O_DIRECT (the file fell back to buffered writes)")
        fh.write(data)
    buffered = str(tmp_path / "buffered.bin")
    with open(buffered, "wb") as fh:
        fh.write(data)
    assert _cached_pages(buffered) > 1000  # the control: a buffered write leaves its 1536 pages cached
    assert _cached_pages(direct) <= 1  # at most the block of the tail


def _refusing_o_direct(real_open):
    """os.open as on a file system that refuses O_DIRECT (EINVAL)."""
    def refuse_direct(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)
    return refuse_direct


def test_open_without_o_direct_support_falls_back_to_buffered_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(direct_file.os, "open", _refusing_o_direct(os.open))
    data = _payload(CHUNK_BYTES + 77)
    path = str(tmp_path / "f.bin")
    with DirectFile(path) as fh:
        fh.write(data)
        assert not fh.direct
    assert open(path, "rb").read() == data


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this platform")
def test_a_buffered_fallback_drops_its_pages_on_close(tmp_path, monkeypatch):
    """Written buffered, the file's pages are handed back on close (after the caller's fsync), so a
    task's GBs of shards are not reclaimed later in its own CPU time."""
    monkeypatch.setattr(direct_file.os, "open", _refusing_o_direct(os.open))
    path = str(tmp_path / "f.bin")
    fh = DirectFile(path)
    assert not fh.direct
    fh.write(_payload(6 << 20))
    fh.flush()
    os.fsync(fh.fileno())
    assert _cached_pages(path) > 1000  # buffered: cached until closed
    fh.close()
    assert _cached_pages(path) <= 1


def test_a_write_refused_with_einval_falls_back_to_buffered_writes(tmp_path, monkeypatch):
    """Some file systems accept the O_DIRECT open but refuse the write itself."""
    real = os.pwrite
    calls = []

    def refuse_direct(fd, data, offset):
        calls.append(offset)
        if direct_file.fcntl.fcntl(fd, direct_file.fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(direct_file.os, "pwrite", refuse_direct)
    data = _payload(2 * CHUNK_BYTES + 12345)
    path = str(tmp_path / "f.bin")
    with DirectFile(path) as fh:
        fh.write(data)
        assert not fh.direct
    assert open(path, "rb").read() == data and calls


def test_other_write_errors_propagate(tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_file.os, "pwrite", full)
    with pytest.raises(OSError, match="No space"):
        with DirectFile(str(tmp_path / "f.bin")) as fh:
            fh.write(_payload(100))


def test_open_atomic_direct_appears_only_on_success(tmp_path):
    target = str(tmp_path / "out.bin")
    with pytest.raises(RuntimeError):
        with storage.open_atomic(target, direct=True) as fh:
            fh.write(_payload(CHUNK_BYTES + 1))
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []
    data = _payload(3 * BLOCK_BYTES + 5)
    with storage.open_atomic(target, direct=True) as fh:
        fh.write(data)
    assert open(target, "rb").read() == data and os.listdir(tmp_path) == ["out.bin"]
