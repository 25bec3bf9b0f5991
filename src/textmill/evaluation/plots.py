"""Plots, drawn off-screen with matplotlib's object API and written atomically."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from ..decoding.seq2seq import AttentionMap
from ..files import replacing
from .metrics import is_chinese

log = logging.getLogger(__name__)
#: Fonts with CJK glyphs that matplotlib falls back to, in order, when one is installed.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")


def _font_family(labels: list[str]) -> list[str]:
    from matplotlib import font_manager

    if not is_chinese(["".join(labels)]) and not any(is_chinese([x]) for x in labels):
        return ["DejaVu Sans"]
    installed = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [f for f in CJK_FONTS if f in installed]
    if not cjk:
        log.warning("no CJK font is installed, so Chinese labels will show as boxes; install one "
                    "(e.g. Debian/Ubuntu: apt install fonts-noto-cjk)")
    return ["DejaVu Sans", *cjk]


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure to `path` (format from the suffix: png, pdf, svg) without half-written files."""
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or None, dpi=150, bbox_inches="tight")
    return path


def plot_attention(amap: AttentionMap, path: str | Path, title: str | None = None) -> Path:
    """A heatmap of target tokens (rows) against source tokens (columns)."""
    import matplotlib
    from matplotlib.figure import Figure

    T, S = amap.weights.shape
    with matplotlib.rc_context({"font.family": _font_family(amap.source + amap.target)}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig = Figure(figsize=(max(4.0, 0.45 * S + 2), max(3.0, 0.4 * T + 1.5)))
        ax = fig.subplots()
        image = ax.imshow(amap.weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(S), [t.strip() or repr(t) for t in amap.source], rotation=90)
        ax.set_yticks(range(T), [t.strip() or repr(t) for t in amap.target])
        ax.set_xlabel("source")
        ax.set_ylabel("output")
        if title:
            ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.04)
        return save_figure(fig, path)
