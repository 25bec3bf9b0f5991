"""The quality report as JSON and as one self-contained HTML file (plots embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from ..files import atomic_write_text

CLASSIFIER_NAMES = {"tfidf": "TF-IDF + logistic regression", "cnn": "Sentence CNN (Kim 2014)",
                    "pretrained": "Pretrained-model features + logistic regression"}


def _png(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


REAL, SYNTHETIC = "#1f77b4", "#ff7f0e"  # every plot draws the real rows in blue, the synthetic ones in orange


def _figure(width: float = 6.0, height: float = 3.0, panels: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, panels)


def _utility_plot(u: dict[str, Any]) -> str:
    """Left: each training set's scores as points with their intervals (the axis starts where the
    scores do, not at 0). Right: the gain of real + synthetic over real only, overall and in each
    label's F1, as points with intervals around a line at zero: green above it, red below, grey across it."""
    names = [k for k, v in u["settings"].items() if v["accuracy"]]
    gains = [("accuracy", u["gain"].get("accuracy")), ("macro-F1", u["gain"].get("macro_f1"))]
    gains += [(f"F1 of {label}", ci) for label, ci in u.get("gain_by_label", {}).items()]
    gains = [(name, ci) for name, ci in gains if ci]
    fig, (left, right) = _figure(10.0, 1.2 + 0.4 * max(2 * len(names), len(gains)), panels=2)

    def interval(ci: dict[str, float]) -> float:
        return 0.0 if math.isnan(ci["ci95"]) else ci["ci95"]

    for j, metric in enumerate(("accuracy", "macro_f1")):
        ys = [2 * i + 0.5 * j for i in range(len(names))]
        cis = [u["settings"][k][metric] for k in names]
        left.errorbar([c["mean"] for c in cis], ys, xerr=[interval(c) for c in cis], fmt="os"[j], capsize=3,
                      color=("#333", "#888")[j], label=metric.replace("_", "-"))
    left.set_yticks([2 * i + 0.25 for i in range(len(names))], [f"train on {k}" for k in names])
    left.invert_yaxis()
    left.set_xlabel("score on the held-out real rows (%)")
    left.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, fontsize="small", frameon=False)
    for i, (name, ci) in enumerate(gains):
        low, high = ci["mean"] - interval(ci), ci["mean"] + interval(ci)
        color = "#2a9d2a" if low > 0 else "#d62728" if high < 0 else "#777"
        right.errorbar([ci["mean"]], [i], xerr=[interval(ci)], fmt="o", capsize=3, color=color)
        right.annotate(f"{ci['mean']:+.2f}", (ci["mean"], i), textcoords="offset points", xytext=(0, 6), ha="center",
                       fontsize="small", color=color)
    right.axvline(0, color="#333", linewidth=0.8)
    right.set_yticks(range(len(gains)), [name for name, _ in gains])
    right.invert_yaxis()
    right.set_ylim(len(gains) - 0.4, -0.7)
    right.set_xlabel("gain of real + synthetic over real only (points)")
    return _png(fig, "scores and gains with their intervals")


def _lengths_plot(h: dict[str, Any]) -> str:
    fig, ax = _figure(6.0, 2.6)
    for side, color in (("real", REAL), ("synthetic", SYNTHETIC)):
        counts = h[side]
        ax.stairs([100 * c / max(sum(counts), 1) for c in counts], h["edges"], color=color, linewidth=1.8,
                  label=f"{side} ({sum(counts)})")
    ax.set_xlabel("length (words; CJK characters)")
    ax.set_ylabel("share of rows (%)")
    ax.legend(fontsize="small")
    return _png(fig, "length histograms, real and synthetic")


def _map_plot(m: dict[str, Any]) -> str:
    """The rows on the first two principal components: hollow circles real, dots synthetic, one colour a label."""
    fig, ax = _figure(6.0, 4.2)
    labels = sorted({p[2] for p in m["real"] + m["synthetic"]})
    colors = {label: f"C{(i + 2) % 10}" for i, label in enumerate(labels)}  # not blue or orange: they mean real, synthetic
    for label in labels:
        syn = [p for p in m["synthetic"] if p[2] == label]
        real = [p for p in m["real"] if p[2] == label]
        ax.scatter([p[0] for p in syn], [p[1] for p in syn], s=9, color=colors[label], alpha=0.6, label=f"{label}, synthetic")
        ax.scatter([p[0] for p in real], [p[1] for p in real], s=28, facecolors="none", edgecolors=colors[label],
                   linewidths=1.1, label=f"{label}, real")
    ax.set_xlabel(f"component 1 ({100 * m['explained'][0]:.0f}% of the variance)")
    ax.set_ylabel(f"component 2 ({100 * m['explained'][1]:.0f}%)")
    ax.legend(fontsize="x-small", ncols=2 if len(labels) > 3 else 1, loc="best")
    return _png(fig, "map of the rows by the pretrained model's features")


def _balance_plot(counts: dict[str, dict[str, int]]) -> str:
    """Each label's share of the real and of the synthetic rows, side by side, with the counts on top."""
    labels = list(counts)
    fig, ax = _figure(max(4.0, 0.9 * len(labels) + 2), 2.8)
    for i, (side, color) in enumerate((("real", REAL), ("synthetic", SYNTHETIC))):
        total = max(sum(v[side] for v in counts.values()), 1)
        xs = [x + 0.38 * i for x in range(len(labels))]
        bars = ax.bar(xs, [100 * counts[label][side] / total for label in labels], 0.38, color=color, label=side)
        ax.bar_label(bars, [str(counts[label][side]) for label in labels], fontsize="x-small")
    ax.set_xticks([x + 0.19 for x in range(len(labels))], labels, rotation=30 if len(labels) > 6 else 0)
    ax.set_ylabel("share of the side's rows (%)")
    ax.set_ylim(0, 1.3 * ax.get_ylim()[1])
    ax.legend(loc="upper right", ncols=2, fontsize="small")
    return _png(fig, "label balance, real and synthetic")


def _writers_plot(by_label: dict[str, dict[str, int]]) -> str:
    """Which generator wrote what share of each label's rows (a mix's parts, EDA below eda_below)."""
    labels = list(by_label)
    writers = sorted({g for v in by_label.values() for g in v})
    fig, ax = _figure(6.0, 0.8 + 0.35 * len(labels))
    left = [0.0] * len(labels)
    for i, g in enumerate(writers):
        shares = [100 * by_label[label].get(g, 0) / max(sum(by_label[label].values()), 1) for label in labels]
        ax.barh(range(len(labels)), shares, left=left, color=f"C{(i + 2) % 10}", label=g)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the label's synthetic rows (%)")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig, "share of each label's rows by generator")


def _table(rows: list[list[Any]], header: list[str]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _ci(x: dict[str, float] | None) -> str:
    if not x:
        return "n/a"
    return f"{x['mean']:.2f}" + ("" if math.isnan(x["ci95"]) else f" ± {x['ci95']:.2f}")


def _tuning(t: dict[str, Any]) -> str:
    from .tune import describe

    chosen = t["chosen"]
    rows = [["real only", "", t["real_only"]["accuracy"], t["real_only"]["macro_f1"], ""]]
    rows += [[("chosen: " if {k: v[k] for k in chosen} == chosen else "") + "real + synthetic", describe(v), v["accuracy"],
              v["macro_f1"], f"{v['rows']} of {v['generated']}" if "generated" in v else v["rows"]] for v in t["settings"]]
    pools = "".join(f"; {n} rows in the pool of {html.escape(g)}" for g, n in t.get("pools", {}).items())
    what = "Shares, label filter and eda_below" if t.get("kind") == "mix" else "Sampling"
    return (f"<h2>{what}, chosen on validation rows</h2><p>{CLASSIFIER_NAMES[t['classifier']]} trained on "
            f"{t['fit_rows']} real rows (+ each setting's synthetic rows, {t['share']:.0%} of the run's{pools}), scored on "
            f"{t['validation_rows']} validation rows ({html.escape(t['validation'])}), never on the rows held out for this "
            "report.</p>" + _table(rows, ["trained on", "setting", "accuracy (%)", "macro-F1 (%)", "synthetic rows"]))


def _fluency(f: dict[str, Any]) -> str:
    """The fluency section: median per-token loss of real and synthetic rows, and of each generator's."""
    rows = [["real rows", f["rows"]["real"], f["real"]], ["synthetic rows", f["rows"]["synthetic"], f["synthetic"]]]
    rows += [[f"written by {g}", "", v] for g, v in f["by_generator"].items()]
    gap = f["gap"]
    verdict = "" if gap is None else (
        f"<p>The synthetic rows read {abs(gap):.2f} nats a token {'less' if gap > 0 else 'more'} fluently than the real "
        f"ones{' (within 0.3 nats: as fluent)' if 0 < gap <= 0.3 else ''}.</p>")
    return (f"<h2>Fluency: does it read like the real data?</h2><p>Median per-token loss (nats) under "
            f"{html.escape(f['model'])}, on a seeded sample of each side; lower reads as more fluent to the model.</p>"
            + _table(rows, ["texts", "scored", "median loss"]) + verdict)


def render_html(report: dict[str, Any]) -> str:
    import matplotlib

    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        return _render(report)


def _render(r: dict[str, Any]) -> str:
    by_generator = r["rows"].get("by_generator", {})
    written = "".join(f"; {n} written by {html.escape(g)}" for g, n in by_generator.items()) if len(by_generator) > 1 else ""
    s: list[str] = [f"<h1>textmill synth report</h1><p>{html.escape(r['generator']['name'])} generator, "
                    f"{r['rows']['synthetic']} synthetic rows from {r['rows']['train']} real training rows; "
                    f"{r['rows']['heldout']} real rows held out for this report only{written}. Config hash "
                    f"<code>{html.escape(r['config_hash'])}</code>.</p>"]
    if r.get("warnings"):
        s.append("<div class=warn>" + "".join(f"<p>{html.escape(w)}</p>" for w in r["warnings"]) + "</div>")
    u = r.get("utility")
    s.append("<h2>Utility: does the synthetic data help a classifier?</h2>")
    if u:
        name = CLASSIFIER_NAMES[u["classifier"]]
        s.append(f"<p>{name}, scored on the {u['test_rows']} held-out real rows; mean and 95% interval "
                 f"over {u['seeds']} bootstrap resamples of each training set.</p>")
        s.append(_table([[k, _ci(v["accuracy"]), _ci(v["macro_f1"])] for k, v in u["settings"].items()],
                        ["trained on", "accuracy (%)", "macro-F1 (%)"]))
        if u.get("gain"):
            by_label = "".join(f", {html.escape(label)} {_ci(ci)}" for label, ci in u.get("gain_by_label", {}).items())
            s.append(f"<p>Gain of real + synthetic over real only (paired by seed): accuracy {_ci(u['gain'].get('accuracy'))}, "
                     f"macro-F1 {_ci(u['gain'].get('macro_f1'))} points; each label's F1{by_label}. On the right, a gain "
                     "whose interval clears zero is green (helps) or red (hurts); grey is within the noise.</p>")
        s.append(_utility_plot(u))
    else:
        s.append("<p>Not measured: no held-out rows or no synthetic rows.</p>")
    if r.get("tuning"):
        s.append(_tuning(r["tuning"]))
    f = r.get("fidelity")
    s.append("<h2>Fidelity: is it like the real data?</h2>")
    if f:
        auc = "n/a (too few rows)" if f["two_sample_auc"] is None else f"{f['two_sample_auc']:.3f}"
        s.append(_table([[f"two-sample classifier AUC against {f['two_sample_real']} real texts "
                          "(0.5: indistinguishable, 1.0: always told apart)", auc],
                         ["mean length, real / synthetic (words; CJK characters)",
                          f"{f['length_mean']['real']:.1f} / {f['length_mean']['synthetic']:.1f}"],
                         ["length distribution, Wasserstein distance", f["length_wasserstein"]],
                         ["unigram distribution, Jensen-Shannon divergence (bits)", f["unigram_js_divergence"]],
                         ["vocabulary, real / synthetic", f"{f['vocabulary']['real']} / {f['vocabulary']['synthetic']}"],
                         ["synthetic words never seen in the real data", f"{100 * f['unseen_word_rate']:.1f}%"]],
                        ["measure", "value"]))
        if f.get("length_histogram"):
            s.append(_lengths_plot(f["length_histogram"]))
    if r.get("fluency"):
        s.append(_fluency(r["fluency"]))
        if r["fluency"].get("map"):
            s.append("<h2>Map: where do the synthetic rows sit among the real ones?</h2><p>The same rows placed by "
                     f"{html.escape(r['fluency']['model'])}'s features (the first two principal components of both sides "
                     "together): synthetic dots bunched in one corner are mode collapse, dots away from the real circles "
                     "are drift, dots of one label among another's circles may carry the wrong label.</p>"
                     + _map_plot(r["fluency"]["map"]))
    d = r["diversity"]
    s.append("<h2>Diversity</h2>")
    keys = ["distinct_1", "distinct_2", "distinct_3", "self_bleu_4", "unique_ratio"]
    s.append(_table([[k, *(d[w][k] if d.get(w) else float("nan") for w in ("synthetic", "real"))] for k in keys],
                    ["measure", "synthetic", "real"]))
    p = r["privacy"]
    s.append("<h2>Privacy: does it copy the training data?</h2>")
    s.append(_table([["exact copies of a training text", p["exact_copies"]],
                     [f"mean / max {p['ngram_overlap']['n']}-gram overlap with the closest training text",
                      f"{p['ngram_overlap']['mean']:.3f} / {p['ngram_overlap']['max']:.3f}"],
                     ["texts with overlap >= 0.5 / >= 0.8", f"{p['ngram_overlap']['at_least_0.5']} / {p['ngram_overlap']['at_least_0.8']}"],
                     ["longest substring shared with a training text, max / median (characters)",
                      f"{p['longest_common_substring']['max']} / {p['longest_common_substring']['median']:.0f}"]],
                    ["measure", "value"]))
    pii = p.get("input_pii")
    if pii:
        types = ", ".join(f"{v} {k}" for k, v in sorted(pii["types"].items())) or "none"
        s.append(f"<p>Personal information in the real training rows: {pii['rows']} of {pii['of']} rows ({types}); "
                 + ("masked before the generator saw them.</p>" if pii["redacted"] else
                    "not masked (<code>--redact-input</code> masks it).</p>"))
    audits = p.get("generators") or ({"": p["generator"]} if p.get("generator") else {})
    for name, g in audits.items():
        dp, m = g.get("dp"), g["membership"]
        s.append(f"<h3>The generator{' ' + html.escape(name) if name else ''}: what did it memorize?</h3>")
        rows = [["differential privacy", f"epsilon {dp['epsilon']:.2f} at delta {dp['delta']:.2g} ({dp['unit']})"
                 + ("" if dp["meaningful"] else ": too large to mean much protection") if dp else "none (no --dp-epsilon)"],
                ["membership inference by loss, AUC (0.5: chance)", m["auc"]],
                ["true positive rate at 1% false positives", m["tpr_at_1pct_fpr"]],
                ["loss per token, training / held-out rows", f"{m['member_loss']:.3f} / {m['non_member_loss']:.3f}"]]
        if "canaries" in g:
            rows.append(["synthetic rows holding a canary's secret", g["canaries_in_output"]])
        s.append(_table(rows, ["measure", "value"]))
        if "canaries" in g:
            s.append("<p>Planted canaries, ranked among random secrets of the same format (exposure in bits; "
                     f"at most {g['canaries'][0]['max_exposure']}):</p>"
                     + _table([[c["secret"], c["label"] or "", c["repeats"], f"{c['rank']} / {c['of']}", c["exposure"],
                                "yes" if c["extracted"] else "no"] for c in g["canaries"]],
                              ["secret", "label", "inserted", "rank", "exposure", "written out by greedy decoding"]))
    if p["longest_common_substring"]["examples"]:
        s.append("<p>The synthetic texts with the longest shared substrings:</p>"
                 + _table([[e["chars"], e["text"]] for e in p["longest_common_substring"]["examples"]], ["characters", "text"]))
    s.append("<h2>Filters</h2>")
    filters = r.get("filters", {})
    s.append(_table([[name, v["removed"], v["reason"]] for name, v in filters.get("removed", {}).items()],
                    ["filter", "removed", "why"]))
    s.append(f"<p>{filters.get('generated', 0)} generated, {r['rows']['synthetic']} kept.</p>")
    s.append("<h2>Label balance</h2>")
    s.append(_balance_plot(r["label_balance"]))
    writers = r["rows"].get("by_label_generator", {})
    if len({g for v in writers.values() for g in v}) > 1:
        s.append("<h2>Who wrote what</h2>" + _writers_plot(writers))
    s.append("<h2>Examples</h2><p>Synthetic rows beside the training row most like each (cosine similarity of their "
             "TF-IDF words and word pairs: 1.0 is the same words; a nearest row of another label is named).</p>")
    for label, ex in r["examples"].items():
        rows = [[e["text"], e["nearest"] if e["nearest_label"] in (label, None) else f"[{e['nearest_label']}] {e['nearest']}",
                 e["similarity"]] for e in ex["synthetic"]]
        s.append(f"<h3>{html.escape(label)}</h3>" + _table(rows, ["synthetic", "nearest training row", "similarity"])
                 + "<p>Real rows of the label:</p><ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in ex["real"]) + "</ul>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
             ".warn{background:#fff3cd;padding:.5em 1em;border-left:4px solid #e0a800}img{max-width:100%}")
    return f'<!doctype html><html><head><meta charset="utf-8"><title>textmill synth report</title><style>{style}</style>' \
           f"</head><body>{''.join(s)}</body></html>"


def _finite(x: Any) -> Any:
    """NaN becomes null: JSON has no NaN."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def write_report(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write the HTML report and the JSON beside it (`report.html` + `report.json`), atomically."""
    path = Path(path)
    html_path, json_path = path.with_suffix(".html"), path.with_suffix(".json")
    atomic_write_text(json_path, json.dumps(_finite(report), indent=2, ensure_ascii=False))
    atomic_write_text(html_path, render_html(report))
    return html_path, json_path
