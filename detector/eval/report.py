"""``report.html``: one self-contained page (inline CSS, every image a data URI, no script, no CDN).

It shows, per model: the metrics table with 95% intervals, P/R/F1 at the operating thresholds, PR
curves per class, the confusion matrix, P/R/F1 against the threshold with the chosen one marked,
and a gallery of the worst images (most missed plus most false boxes) with ground truth in green
and predictions in red, labelled. With two models, the paired comparison comes first.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from detector.eval import gallery, plots
from detector.eval.stats import EvalStats
from detector.io import write_text

FIGURES = ("precision", "recall", "f1", "mAP50", "mAP50-95")
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}.warn{background:#fff3cd;padding:8px;border:1px solid #e0c060}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.gallery figure{margin:0;max-width:480px}
figcaption{font-size:12px;color:#555;overflow-wrap:anywhere}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px}
"""


def interval_text(d: dict | None, bracket: str = "[{}]") -> str:
    """``0.512 [0.471, 0.556]`` (the interval put into ``bracket``); ``-`` where a figure is undefined."""
    if not d or d.get("value") is None:
        return "-"
    if d.get("low") is None:
        return f"{d['value']:.3f}"
    return f"{d['value']:.3f} " + bracket.format(f"{d['low']:.3f}, {d['high']:.3f}")


def _iv(d: dict | None) -> str:
    return interval_text(d, "<small>[{}]</small>")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics(ev: dict) -> str:
    rows = [["<b>all</b>", ev["images"], ev["boxes"], *(_iv(ev["overall"][k]) for k in FIGURES)]]
    rows += [
        [html.escape(n), m["images"], m["boxes"], *(_iv(m[k]) for k in FIGURES)]
        for n, m in ev["per_class"].items()
    ]
    return _table(["class", "images", "boxes", *FIGURES], rows)


def _operating(ev: dict) -> str:
    op, at = ev["thresholds"], ev["thresholds"]["at_thresholds"]
    rows = [
        ["<b>all</b> (macro)", "", _iv(at.get("precision")), _iv(at.get("recall")), _iv(at.get("f1_macro"))]
    ]
    rows += [
        [html.escape(n), f"{at['thresholds'][n]:.3f}", _iv(m["precision"]), _iv(m["recall"]), _iv(m["f1"])]
        for n, m in at["per_class"].items()
    ]
    head = f"<p>Rule <code>{html.escape(str(op.get('rule')))}</code>, {html.escape(op['source'])}.</p>"
    return head + _table(["class", "threshold", "precision", "recall", "F1"], rows)


def _comparison(cmp: dict) -> str:
    rows = [["<b>mAP50-95, all</b>", _iv(cmp["overall"]["mAP50-95"]), html.escape(cmp["verdict"])]]
    rows += [
        [html.escape(n), _iv(m["mAP50-95"]), html.escape(m["verdict"])] for n, m in cmp["per_class"].items()
    ]
    intro = (
        f"<p>B − A on the same images, paired bootstrap ({cmp['resamples']} resamples, {cmp['level']:.0%}): "
        f"A = <code>{html.escape(cmp['a'])}</code>, B = <code>{html.escape(cmp['b'])}</code>.</p>"
    )
    return "<h2>Paired comparison</h2>" + intro + _table(["", "B − A [interval]", "verdict"], rows)


def _gallery(stats: EvalStats, thr: dict[int, float], n: int) -> str:
    figs = []
    for i, missed, false in gallery.worst(stats, thr, n):
        name = html.escape(Path(stats.im_files[i]).name)
        figs.append(
            f'<figure><img class="worst" src="{gallery.drawn(stats, i, thr)}" alt="{name}">'
            f"<figcaption>{name}: {missed} missed, {false} false</figcaption></figure>"
        )
    legend = '<p class="legend"><span style="background:#00c800"></span>ground truth <span style="background:#eb2828"></span>prediction (class, confidence)</p>'
    return f"<h3>Worst images (most missed plus false boxes, at the thresholds)</h3>{legend}<div class='gallery'>{''.join(figs)}</div>"


def _model(label: str, ev: dict, stats: EvalStats, thr: dict[int, float], n: int) -> str:
    m = ev["model"]
    ap50 = {name: c["mAP50"]["value"] for name, c in ev["per_class"].items()}
    return "".join(
        [
            f"<h2>{label}<code>{html.escape(m['label'])}</code> ({html.escape(m['runtime'])})</h2>",
            _metrics(ev),
            "<h3>At the operating thresholds</h3>",
            _operating(ev),
            f'<img alt="PR curves" src="{plots.pr_curves(stats, ap50)}">',
            f'<img alt="confusion matrix" src="{plots.confusion_plot(gallery.confusion(stats, thr), stats.names)}">',
            f'<img alt="P, R and F1 against threshold" src="{plots.threshold_curves(stats, thr)}">',
            _gallery(stats, thr, n),
        ]
    )


def write(path: Path, doc: dict, models: list[tuple[EvalStats, dict[int, float]]], n_gallery: int) -> Path:
    """Render the page for ``doc`` (what metrics.json holds) with each model's stats and thresholds."""
    warn = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in doc["warnings"])
    labels = ["A: ", "B: "] if len(models) == 2 else [""]
    body = [
        f"<h1>detector-eval: {html.escape(doc['split'])} split</h1>",
        f"<p>Data <code>{html.escape(doc['data']['yaml'])}</code>, {doc['models'][0]['images']} images. "
        "Intervals: 95% bootstrap over images. Figures at IoU 0.5:0.95 are Ultralytics' own (mAP50-95).</p>",
        warn,
        _comparison(doc["comparison"]) if "comparison" in doc else "",
        *(
            _model(lb, ev, s, t, n_gallery)
            for lb, ev, (s, t) in zip(labels, doc["models"], models, strict=True)
        ),
    ]
    page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>detector-eval</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    write_text(path, page)
    return path
