"""The fast PNG path (``gazelab.models.datasets.png``) gives PIL's pixels for every filter
type, grey and RGB, and hands every other file back to PIL (``None``): other depths and
colour types, interlacing, palettes, transparency, bad CRCs, truncated or padded
streams, unknown filter types and sizes over the limit."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gazelab.models.datasets.base import read_image, read_image_bytes
from gazelab.models.datasets.png import SIGNATURE, decode_png


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def filtered(img: np.ndarray, kinds: list[int]) -> bytes:
    """The rows of ``img`` ((H, W) or (H, W, 3) uint8) filtered as PNG encoders do, row r
    with filter ``kinds[r]`` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    h = img.shape[0]
    bpp = 1 if img.ndim == 2 else img.shape[2]
    rows = img.reshape(h, -1).astype(np.int32)
    out = bytearray()
    for r in range(h):
        x = rows[r]
        up = rows[r - 1] if r else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        k = kinds[r]
        if k == 0:
            pred = np.zeros_like(x)
        elif k == 1:
            pred = left
        elif k == 2:
            pred = up
        elif k == 3:
            pred = (left + up) >> 1
        else:
            p = left + up - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        out.append(k)
        out += ((x - pred) & 255).astype(np.uint8).tobytes()
    return bytes(out)


def png(img: np.ndarray, kinds: list[int], *, extra: bytes = b"", ihdr: bytes | None = None,
        stream: bytes | None = None, split: int = 1) -> bytes:  # fmt: skip
    h, w = img.shape[:2]
    colour = 0 if img.ndim == 2 else 2
    header = ihdr or struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    data = zlib.compress(filtered(img, kinds)) if stream is None else stream
    step = -(-len(data) // split)
    idat = b"".join(chunk(b"IDAT", data[i : i + step]) for i in range(0, len(data), step))
    return SIGNATURE + chunk(b"IHDR", header) + extra + idat + chunk(b"IEND", b"")


def pil(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (33, 64)])
def test_every_filter_type_gives_pil_s_pixels(channels: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(channels * 100 + shape[1])
    size = shape if channels == 1 else (*shape, channels)
    smooth = np.cumsum(rng.integers(0, 9, size), axis=1) % 256  # neighbours alike, as faces
    for img in (rng.integers(0, 256, size), smooth, np.full(size, 255)):
        img = img.astype(np.uint8)
        for kinds in ([k] * shape[0] for k in range(5)):
            data = png(img, kinds)
            got = decode_png(data, 10**6)
            assert got is not None and got.dtype == np.uint8
            assert np.array_equal(got, pil(data)) and np.array_equal(got, img)
        mixed = png(img, list(rng.integers(0, 5, shape[0])), split=3)  # several IDAT chunks
        assert np.array_equal(decode_png(mixed, 10**6), img)


def test_files_pil_writes_are_read_the_same() -> None:
    rng = np.random.default_rng(7)
    for mode, size in (("L", (40, 30)), ("RGB", (40, 30, 3))):
        img = np.cumsum(rng.integers(0, 5, size), axis=0).astype(np.uint8)
        for level in (0, 1, 6, 9):
            buf = io.BytesIO()
            Image.fromarray(img, mode).save(buf, "PNG", compress_level=level)
            got = decode_png(buf.getvalue(), 10**6)
            assert got is not None and np.array_equal(got, img)


def test_every_other_file_is_handed_to_pil() -> None:
    rng = np.random.default_rng(8)
    img = rng.integers(0, 256, (6, 5)).astype(np.uint8)
    good = png(img, [4] * 6)
    assert decode_png(good, 10**6) is not None
    raw = filtered(img, [4] * 6)
    crc_bad = bytearray(good)
    crc_bad[-20] ^= 1  # inside the IDAT chunk
    cases = {
        "not a PNG": b"GIF89a" + good[6:],
        "16-bit grey": png(img, [0] * 6, ihdr=struct.pack(">IIBBBBB", 5, 6, 16, 0, 0, 0, 0)),
        "RGBA": png(img, [0] * 6, ihdr=struct.pack(">IIBBBBB", 5, 6, 8, 6, 0, 0, 0)),
        "a palette": png(img, [0] * 6, ihdr=struct.pack(">IIBBBBB", 5, 6, 8, 3, 0, 0, 0)),
        "interlaced": png(img, [0] * 6, ihdr=struct.pack(">IIBBBBB", 5, 6, 8, 0, 0, 0, 1)),
        "a transparent colour": png(img, [0] * 6, extra=chunk(b"tRNS", b"\x00\x07")),
        "a bad CRC": bytes(crc_bad),
        "truncated": good[:-13],
        "a short stream": png(img, [0] * 6, stream=zlib.compress(raw[:-1])),
        "a long stream": png(img, [0] * 6, stream=zlib.compress(raw + b"\x00")),
        "not zlib": png(img, [0] * 6, stream=b"\x00" * 40),
        "filter type 5": png(img, [0] * 6, stream=zlib.compress(b"\x05" + raw[1:])),
        "no IDAT": SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 6, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b""),
        "IDAT before IHDR": SIGNATURE + chunk(b"IDAT", b"") + good[8:],
    }  # fmt: skip
    for why, data in cases.items():
        assert decode_png(data, 10**6) is None, why
    assert decode_png(good, 29) is None  # 30 pixels, over a limit of 29


def test_a_bomb_is_refused_before_anything_is_inflated() -> None:
    """A header claiming 60 000² pixels over a tiny stream: refused by the limit, and a
    stream that inflates past the image's size stops at one byte past it."""
    ihdr = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0)
    bomb = png(np.zeros((1, 1), np.uint8), [0], ihdr=ihdr, stream=zlib.compress(bytes(10**7)))
    assert decode_png(bomb, 40 * 10**6) is None
    small = png(np.zeros((2, 2), np.uint8), [0, 0], stream=zlib.compress(bytes(10**7)))
    assert decode_png(small, 10**6) is None


def test_read_image_bytes_is_read_image(tmp_path: Path) -> None:
    """The loaders' decoding of bytes already read: the fast path where it applies, else
    PIL from the path, with read_image's errors and limits either way."""
    from gazelab.models.datasets.base import DatasetError

    rng = np.random.default_rng(9)
    for name, arr, mode in (
        ("grey.png", rng.integers(0, 256, (9, 8)), "L"),
        ("rgb.png", rng.integers(0, 256, (9, 8, 3)), "RGB"),
        ("rgba.png", rng.integers(0, 256, (9, 8, 4)), "RGBA"),
        ("pal.png", rng.integers(0, 256, (9, 8)), "P"),
    ):
        p = tmp_path / name
        Image.fromarray(arr.astype(np.uint8), mode).save(p)
        assert np.array_equal(read_image_bytes(p.read_bytes(), p), read_image(p)), name
    p = tmp_path / "grey.png"
    with pytest.raises(DatasetError, match="over the limit"):
        read_image_bytes(p.read_bytes(), p, max_pixels=71)


def test_only_files_pil_reads_the_same_way_take_the_fast_path() -> None:
    """The fast path reads IHDR, gAMA / sRGB / pHYs at their writers' lengths, one run of
    IDAT chunks and IEND. A frame box (PIL decodes only the box), text, a profile, an
    unknown chunk, a short pHYs, or a chunk between or after the image data goes to PIL,
    which may refuse the file: a file PIL refuses is never decoded here."""
    rng = np.random.default_rng(10)
    img = rng.integers(0, 256, (4, 5)).astype(np.uint8)
    stream = zlib.compress(filtered(img, [0] * 4))
    ok_extras = [
        chunk(b"gAMA", struct.pack(">I", 45455)),
        chunk(b"sRGB", b"\x00"),
        chunk(b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
        chunk(b"tIME", struct.pack(">HBBBBB", 2010, 5, 17, 13, 4, 59)),  # as CK+48's crops
    ]
    data = png(img, [0] * 4, extra=b"".join(ok_extras))
    got = decode_png(data, 10**6)
    assert got is not None and np.array_equal(got, pil(data))
    fctl = chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 5, 2, 0, 2, 1, 10, 0, 0))
    idat = chunk(b"IDAT", stream)
    half = len(stream) // 2
    head = SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 8, 0, 0, 0, 0))
    end = chunk(b"IEND", b"")
    handed = {
        "a frame box": head + fctl + idat + end,
        "image data split by text": head + chunk(b"IDAT", stream[:half])
        + chunk(b"tEXt", b"k\x00v") + chunk(b"IDAT", stream[half:]) + end,
        "text after the data": head + idat + chunk(b"tEXt", b"k\x00v") + end,
        "an unknown chunk": head + chunk(b"a-b!", b"") + idat + end,
        "a short pHYs": head + chunk(b"pHYs", b"\x00" * 5) + idat + end,
        "an empty sRGB": head + chunk(b"sRGB", b"") + idat + end,
        "a profile": head + chunk(b"iCCP", b"p\x00\x00" + zlib.compress(b"x" * 100)) + idat + end,
    }  # fmt: skip
    for why, data in handed.items():
        assert decode_png(data, 10**6) is None, why
    assert np.array_equal(pil(handed["a frame box"])[:2], np.zeros((2, 5)))  # PIL: the box


def test_sizes_past_pil_s_limit_or_any_limit_are_pil_s() -> None:
    """A header of 2³² − 1 squared pixels with an unbounded limit: PIL's own bomb limit
    applies (no overflow in the inflating bound)."""
    ihdr = struct.pack(">IIBBBBB", 2**32 - 1, 2**32 - 1, 8, 0, 0, 0, 0)
    data = png(np.zeros((1, 1), np.uint8), [0], ihdr=ihdr, stream=zlib.compress(b"\x00\x00"))
    assert decode_png(data, 10**30) is None
