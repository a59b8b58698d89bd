"""Checking a PNG that ``--plot`` wrote: a real PNG, big enough, with the colours of
several curves or bars in it (not a blank or one-colour image)."""
from __future__ import annotations

import importlib.util
import os

import pytest

#: matplotlib is in the test extra (pyproject.toml); without it the plot tests say so
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(
    not HAVE_MATPLOTLIB, reason="matplotlib is not installed: pip install 'rtudp[plot]' "
                                "(the test extra has it)")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path: str, colours: int = 5, width: int = 700, height: int = 400) -> None:
    """``path`` is a PNG of at least ``width`` x ``height`` pixels with at least
    ``colours`` distinct colours that each cover 40 pixels or more (lines, bars,
    markers: anti-aliasing alone does not count)."""
    from PIL import Image

    assert os.path.exists(path), f"no plot at {path}"
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, f"{path} is not a PNG"
    assert os.path.getsize(path) > 20_000, f"{path}: only {os.path.getsize(path)} bytes"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.width >= width and img.height >= height, img.size
        counts = img.convert("RGB").getcolors(maxcolors=img.width * img.height)
    big = [rgb for n, rgb in counts if n >= 40]
    assert len(big) >= colours, f"{path}: {len(big)} colours cover 40+ pixels: {big}"
