"""Draw OsteoView's icon: ``resources/icons/osteoview.svg`` and PNGs at the sizes desktops ask
for (``osteoview-<N>.png``), one geometry for both: a white bone across a blue rounded square,
with a red fracture line. Run ``python packaging/make_icons.py`` after changing the drawing; the
files are committed, so building a package needs no image tool.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
UNIT = 256  # the SVG's own size; every coordinate below is on this grid
BACKGROUND = "#1f4e79"
BONE = "#f4f1e8"
CRACK = "#d9342b"
# The bone: a shaft from one end to the other, each end two knobs beside the axis.
END_A, END_B = (72.0, 184.0), (184.0, 72.0)
SHAFT_HALF_WIDTH = 17.0
KNOB_RADIUS = 26.0
KNOB_OFFSET = 20.0  # from the axis, perpendicular
CRACK_LINE = ((112.0, 116.0), (128.0, 134.0), (140.0, 122.0), (152.0, 142.0))


def _knobs() -> list[tuple[float, float]]:
    dx, dy = END_B[0] - END_A[0], END_B[1] - END_A[1]
    length = math.hypot(dx, dy)
    px, py = -dy / length * KNOB_OFFSET, dx / length * KNOB_OFFSET
    return [(x + sx * px, y + sx * py) for (x, y) in (END_A, END_B) for sx in (1, -1)]


def svg() -> str:
    knobs = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{KNOB_RADIUS}" fill="{BONE}"/>' for x, y in _knobs()
    )
    crack = " ".join(f"{x:.0f},{y:.0f}" for x, y in CRACK_LINE)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{UNIT}" height="{UNIT}" '
        f'viewBox="0 0 {UNIT} {UNIT}">\n'
        f'  <rect x="8" y="8" width="240" height="240" rx="44" fill="{BACKGROUND}"/>\n'
        f'  <line x1="{END_A[0]}" y1="{END_A[1]}" x2="{END_B[0]}" y2="{END_B[1]}" '
        f'stroke="{BONE}" stroke-width="{2 * SHAFT_HALF_WIDTH}"/>\n'
        f"  {knobs}\n"
        f'  <polyline points="{crack}" fill="none" stroke="{CRACK}" stroke-width="8" '
        f'stroke-linejoin="round" stroke-linecap="round"/>\n'
        "</svg>\n"
    )


def png(size: int) -> Image.Image:
    """Drawn at 4x and reduced, so small sizes are anti-aliased."""
    big = size * 4
    s = big / UNIT
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([8 * s, 8 * s, 248 * s, 248 * s], radius=44 * s, fill=BACKGROUND)
    d.line([END_A[0] * s, END_A[1] * s, END_B[0] * s, END_B[1] * s], fill=BONE,
           width=round(2 * SHAFT_HALF_WIDTH * s))  # fmt: skip
    r = KNOB_RADIUS * s
    for x, y in _knobs():
        d.ellipse([x * s - r, y * s - r, x * s + r, y * s + r], fill=BONE)
    d.line([(x * s, y * s) for x, y in CRACK_LINE], fill=CRACK, width=max(1, round(8 * s)),
           joint="curve")  # fmt: skip
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "osteoview.svg").write_text(svg())
    for size in SIZES:
        png(size).save(OUT / f"osteoview-{size}.png", optimize=True)
    print(f"{OUT}: osteoview.svg and {len(SIZES)} PNG sizes")


if __name__ == "__main__":
    main()
