#!/usr/bin/env python3
"""Writes test/fixtures/blue-4x6.jpg, the JPEG of the image-folder test (documentation only; needs Pillow:
Debian's python3-pil). A 6x4 (width x height) image of one colour, so that its decoded pixels are known."""
from pathlib import Path

from PIL import Image

out = Path(__file__).resolve().parent.parent / 'test' / 'fixtures' / 'blue-4x6.jpg'
Image.new('RGB', (6, 4), (20, 60, 200)).save(out, quality=95)
print(out, out.stat().st_size, 'bytes')
