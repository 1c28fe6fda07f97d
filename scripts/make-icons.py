#!/usr/bin/env python3
"""Generate ComfyFleet's app and tray icons into icons/.

The mark: a rounded square with a violet-to-teal gradient carrying a small node graph
(one source node fanning out to three worker nodes through curved "noodles", as in
ComfyUI's graph), which reads as "one workflow, a fleet of GPUs".

Everything is drawn at 1024 px and downsampled with Lanczos, so every size is
anti-aliased. Needs Pillow (`pip install pillow`). Run from anywhere:

    python3 scripts/make-icons.py
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "icons"
S = 1024  # master canvas size

# Brand colours.
TOP_LEFT = (124, 58, 237)  # violet-600
BOTTOM_RIGHT = (13, 148, 136)  # teal-600
GLYPH = (255, 255, 255)
TRAY_FILL = (91, 72, 214)  # mid-tone violet: contrasts with both dark and light panels


def rounded_mask(size: int, inset: int, radius: int) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (inset, inset, size - 1 - inset, size - 1 - inset), radius=radius, fill=255
    )
    return mask


def diagonal_gradient(size: int, c0: tuple, c1: tuple) -> Image.Image:
    """A top-left to bottom-right linear gradient, built from a 2-pixel ramp (fast)."""
    ramp = Image.linear_gradient("L").resize((size, size))  # vertical 0..255
    diag = ImageChops.add(ramp.rotate(90), ramp, scale=2.0)  # (x + y) / 2
    a = Image.new("RGB", (size, size), c0)
    b = Image.new("RGB", (size, size), c1)
    return Image.composite(b, a, diag)


def bezier(p0, p1, p2, p3, steps=64):
    pts = []
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        x = u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0]
        y = u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1]
        pts.append((x, y))
    return pts


def stroke(draw: ImageDraw.ImageDraw, pts, width: float, colour) -> None:
    """A smooth thick curve: round stamps every pixel (PIL's wide polylines are jagged)."""
    r = width / 2
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0)))
        for i in range(n + 1):
            x = x0 + (x1 - x0) * i / n
            y = y0 + (y1 - y0) * i / n
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def draw_glyph(draw: ImageDraw.ImageDraw, size: int, colour, bold: bool) -> None:
    """A workflow node on the left wired to a column of worker nodes (the fleet) on the right,
    drawn as ComfyUI-style boxes joined by curved noodles."""
    k = size / 1024
    wire = (54 if bold else 40) * k
    # Source node: a tall rounded box with an output socket on its right edge.
    sx0, sy0, sx1, sy1 = 190 * k, 330 * k, 430 * k, 694 * k
    if bold:
        sx0, sy0, sx1, sy1 = 170 * k, 320 * k, 440 * k, 704 * k
    out_pt = (sx1, 512 * k)
    # Worker nodes: small rounded boxes with an input socket on their left edge.
    bw, bh = (230 * k, 150 * k) if not bold else (270 * k, 210 * k)
    ys = [250, 512, 774] if not bold else [300, 724]
    bx0 = 620 * k if not bold else 590 * k
    for y in ys:
        y *= k
        inp = (bx0, y)
        dx = (inp[0] - out_pt[0]) * 0.6
        stroke(draw, bezier(out_pt, (out_pt[0] + dx, out_pt[1]), (inp[0] - dx, inp[1]), inp), wire, colour)
    draw.rounded_rectangle((sx0, sy0, sx1, sy1), radius=52 * k, fill=colour)
    for y in ys:
        y *= k
        draw.rounded_rectangle((bx0, y - bh / 2, bx0 + bw, y + bh / 2), radius=40 * k, fill=colour)


def app_icon() -> Image.Image:
    inset = 72  # macOS-style margin so the mark sits like its neighbours in docks and launchers
    radius = 210
    mask = rounded_mask(S, inset, radius)

    body = diagonal_gradient(S, TOP_LEFT, BOTTOM_RIGHT).convert("RGBA")
    # Soft top highlight for depth.
    hl = Image.new("L", (S, S), 0)
    ImageDraw.Draw(hl).ellipse((-S * 0.3, -S * 0.75, S * 1.3, S * 0.42), fill=40)
    hl = hl.filter(ImageFilter.GaussianBlur(S / 8))
    body = Image.composite(Image.new("RGBA", (S, S), (255, 255, 255, 255)), body, hl)

    glyph = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    draw_glyph(ImageDraw.Draw(glyph), S, GLYPH + (255,), bold=False)
    # A faint shadow under the glyph keeps it crisp on the light end of the gradient.
    shadow = Image.new("RGBA", (S, S), (20, 10, 60, 0))
    shadow.putalpha(glyph.getchannel("A").point(lambda v: v * 70 // 255))
    shadow = shadow.filter(ImageFilter.GaussianBlur(10))
    body.alpha_composite(shadow, (0, 10))
    body.alpha_composite(glyph)

    out = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    out.paste(body, (0, 0), mask)
    return out


def tray_icon() -> Image.Image:
    """A solid mid-tone badge with a bold white glyph and a thin light rim:
    the badge separates it from dark panels, the white glyph from light ones."""
    m = rounded_mask(S, 16, 240)
    rim = Image.new("RGBA", (S, S), (255, 255, 255, 210))
    fill = Image.new("RGBA", (S, S), TRAY_FILL + (255,))
    out = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    out.paste(rim, (0, 0), m)
    out.paste(fill, (0, 0), rounded_mask(S, 56, 200))
    g = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    draw_glyph(ImageDraw.Draw(g), S, GLYPH + (255,), bold=True)
    out.alpha_composite(g)
    return out


def down(img: Image.Image, px: int) -> Image.Image:
    return img.resize((px, px), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    master = app_icon()
    pngs = {
        "32x32.png": 32,
        "64x64.png": 64,
        "128x128.png": 128,
        "128x128@2x.png": 256,
        "icon.png": 512,
    }
    for name, px in pngs.items():
        down(master, px).save(OUT / name, optimize=True)

    ico_sizes = [16, 24, 32, 48, 64, 128, 256]
    down(master, 256).save(OUT / "icon.ico", sizes=[(s, s) for s in ico_sizes])
    # Pillow writes every ICNS size it supports from the largest image given.
    master.save(OUT / "icon.icns")

    down(tray_icon(), 32).save(OUT / "tray.png", optimize=True)
    down(tray_icon(), 64).save(OUT / "tray@2x.png", optimize=True)

    for p in sorted(OUT.iterdir()):
        if p.suffix == ".png":
            with Image.open(p) as im:
                assert im.mode == "RGBA", f"{p.name} is {im.mode}, Tauri needs RGBA"
                print(f"{p.relative_to(ROOT)}  {im.size[0]}x{im.size[1]} {im.mode}")
        else:
            print(f"{p.relative_to(ROOT)}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
