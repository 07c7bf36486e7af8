"""decode_upload: every refusal says why; every mode people upload comes out as L or RGB."""
from __future__ import annotations

import io
import zlib
import struct

import numpy as np
import pytest
from PIL import Image

from ml.errors import BadImage
from ml.inference.decode import decode_upload
from tests.utils.shapes import short_png

CAPS = {"max_bytes": 1_000_000, "max_pixels": 4_000_000}


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _refusal(data: bytes, **caps) -> str:
    with pytest.raises(BadImage) as info:
        decode_upload(data, **{**CAPS, **caps})
    return info.value.reason


def test_empty_file_is_refused():
    assert "empty" in _refusal(b"")


def test_too_many_bytes_is_refused_with_the_limit():
    data = _png(Image.new("L", (64, 64), 255))
    reason = _refusal(data, max_bytes=len(data) - 1)
    assert f"{len(data):,} bytes" in reason and "limit" in reason


def test_text_is_not_an_image():
    assert "not an image" in _refusal(b"hello, this is a text file, not a picture\n" * 10)


def test_truncated_png_is_refused():
    data = _png(Image.effect_noise((200, 200), 64).convert("L"))
    assert "truncated" in _refusal(data[: len(data) // 2])


def test_truncated_jpeg_is_refused():
    data = _encode(Image.effect_noise((300, 300), 64).convert("RGB"), "JPEG", quality=90)
    assert "truncated" in _refusal(data[: len(data) // 3])


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (the zlib stream is a few KB)."""
    raw = zlib.compress(b"\x00" * (width // 8 + 1) * 64, 9)  # some rows; the rest would be missing

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_too_many_pixels_is_refused_from_the_header():
    data = _bomb_png(3000, 3000)  # 9 MP claimed, a few hundred bytes sent
    assert len(data) < 2000
    reason = _refusal(data)
    assert "3000×3000" in reason and "limit is 4,000,000 pixels" in reason


def test_decompression_bomb_beyond_pils_own_guard_is_refused():
    reason = _refusal(_bomb_png(50_000, 50_000), max_pixels=10**12)
    assert "too many pixels" in reason


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pils_guard_caps_a_generous_setting():
    reason = _refusal(_bomb_png(10_000, 10_000), max_pixels=10**12)  # 100 MP > MAX_IMAGE_PIXELS
    assert "pixels" in reason


def test_formats_that_guess_from_any_bytes_are_not_tried():
    # 18 arbitrary bytes plus payload parse as a TGA header; we never try TGA.
    tga = _encode(Image.new("RGB", (8, 8), "red"), "TGA")
    assert "not an image" in _refusal(tga)


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.putpixel((5, 5), (0, 0, 0, 255))
    out = decode_upload(_png(img), **CAPS)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((5, 5)) == (0, 0, 0)


def test_la_is_composited_on_white():
    img = Image.new("LA", (10, 10), (0, 0))
    img.putpixel((2, 3), (0, 255))
    out = decode_upload(_png(img), **CAPS)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((2, 3)) == (0, 0, 0)


def test_palette_with_transparency():
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    out = decode_upload(_png(img, transparency=0), **CAPS)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 1)) == (255, 0, 0)


def test_cmyk_jpeg_becomes_rgb():
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 255))  # pure black ink
    out = decode_upload(_encode(img, "JPEG", quality=95), **CAPS)
    assert out.mode == "RGB" and max(out.getpixel((8, 8))) < 30


def test_16_bit_grayscale_is_scaled_not_clipped():
    a = np.zeros((8, 8), dtype=np.uint16)
    a[:, 4:] = 32768  # mid grey in 16 bits
    img = Image.fromarray(a)  # mode I;16
    out = decode_upload(_png(img), **CAPS)
    assert out.mode == "L"
    assert out.getpixel((0, 0)) == 0 and 120 <= out.getpixel((6, 0)) <= 135


def test_32_bit_tiff_and_float_tiff():
    a = np.full((8, 8), 65535, dtype=np.int32)
    assert decode_upload(_encode(Image.fromarray(a), "TIFF"), **CAPS).getpixel((0, 0)) == 255
    f = np.full((8, 8), 0.5, dtype=np.float32)
    assert 125 <= decode_upload(_encode(Image.fromarray(f), "TIFF"), **CAPS).getpixel((0, 0)) <= 130


def test_bilevel_image():
    out = decode_upload(_png(Image.new("1", (8, 8), 1)), **CAPS)
    assert out.mode == "L" and out.getpixel((0, 0)) == 255


def test_first_frame_of_an_animation():
    frames = [Image.new("L", (20, 20), v) for v in (0, 255, 128)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    out = decode_upload(buf.getvalue(), **CAPS)
    assert out.convert("L").getpixel((10, 10)) == 0


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), "white")  # landscape on disk
    img.paste((0, 0, 0), (0, 0, 10, 20))  # black band at the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = decode_upload(_encode(img, "JPEG", exif=exif, quality=95), **CAPS)
    assert out.size == (20, 40)  # displayed portrait
    assert sum(out.getpixel((10, 2))) < 100  # the band is now at the top
    assert sum(out.getpixel((10, 37))) > 600


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "PPM", "TIFF", "GIF"])
def test_common_formats_decode(fmt):
    img = Image.new("RGB", (30, 20), (10, 200, 30))
    out = decode_upload(_encode(img, fmt), **CAPS)
    assert out.size == (30, 20) and out.mode in ("RGB", "L")


@pytest.mark.parametrize("width, height, rows, interlace", [
    (6300, 6300, 8, 0),  # the QA's case: 152 bytes that Pillow decoded as a black 6300² image
    (64, 64, 63, 0),  # one row short
    (64, 64, 40, 1),  # Adam7: fewer bytes than its seven passes need
])
def test_a_png_whose_data_ends_before_its_header_size_is_refused_like_a_truncated_jpeg(width, height, rows,
                                                                                       interlace):
    reason = _refusal(short_png(width, height, rows, interlace=interlace), max_pixels=50_000_000)
    assert "truncated" in reason and f"{width}×{height}" in reason


def test_a_complete_png_whose_last_row_is_black_decodes_and_one_row_short_does_not():
    # black rows at the end look like the zeros Pillow leaves for missing rows: only the count tells them apart
    # (row i of short_png is grey level i % 256: row 256, the last of 257, is black)
    assert decode_upload(short_png(10, 257, 257), **CAPS).size == (10, 257)
    assert "truncated" in _refusal(short_png(10, 258, 257))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
@pytest.mark.parametrize("interlace", [0, 1])
def test_complete_pngs_of_every_depth_and_interlacing_still_decode(mode, interlace):
    image = Image.effect_noise((65, 63), 64).convert("RGBA" if mode in ("LA", "RGBA") else "RGB").convert(mode)
    assert decode_upload(_png(image, interlace=interlace), **CAPS).size == (65, 63)
    assert decode_upload(short_png(65, 63, 63, interlace=0), **CAPS).size == (65, 63)
