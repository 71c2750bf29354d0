"""Tokens on screen: axis labels thinned to fit any prompt length, and the token strip as HTML.

The strip shows every token exactly: spaces as a faint ``·``, tabs as ``→``, newlines as ``↵`` followed by a real
line break (blank lines and indentation survive), split UTF-8 characters as their bytes (``⟨c3⟩``, the merged
character in the hover), special tokens boxed. :func:`attention_strip_html` adds CircuitsVis-style interaction:
hover a token to shade what it attends to (or is attended from), click to lock it.
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence

import numpy as np

from interp.token_display import TokenPiece

#: At most this many tick labels on a token axis; the rest are in the hover.
MAX_TICKS = 40
#: The interactive strip carries the full [query, key] pattern up to this many tokens.
MAX_STRIP_TOKENS = 512


def short_label(index: int, text: str, max_len: int = 12) -> str:
    """``"12: ␣cat"``: position and token with whitespace visible, cut to ``max_len`` characters."""
    s = text.replace("\n", "↵").replace("\t", "→").replace("\r", "␍")
    if s and not s.strip():
        s = s.replace(" ", "␣")
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    return f"{index}: {s}"


def thinned_ticks(labels: Sequence[str], max_ticks: int = MAX_TICKS) -> dict:
    """Plotly axis settings showing at most ``max_ticks`` evenly spaced labels of a position axis."""
    n = len(labels)
    every = max(1, -(-n // max_ticks))
    vals = list(range(0, n, every))
    return dict(tickmode="array", tickvals=vals, ticktext=[labels[i] for i in vals])


def _visible(text: str) -> str:
    """HTML of a token's text with whitespace drawn: ``·`` spaces, ``→`` tabs, ``↵`` + break for newlines."""
    out = []
    for ch in text:
        if ch == " ":
            out.append('<span class="ws">·</span>')
        elif ch == "\t":
            out.append('<span class="ws">→</span>')
        elif ch == "\n":
            out.append('<span class="ws">↵</span><br>')
        elif ch == "\r":
            out.append('<span class="ws">␍</span>')
        else:
            out.append(html.escape(ch))
    return "".join(out) or '<span class="ws">∅</span>'


_CSS = """
<style>
 body{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:14px;color:#222}
 .strip{line-height:2.0;word-break:break-all}
 .tok{padding:2px 1px;border-radius:3px;border:1px solid transparent;cursor:pointer;white-space:pre}
 .tok:hover{border-color:#999}
 .ws{color:#b0b0b0}
 .special{border:1px dashed #888;color:#666;font-size:12px}
 .partial{color:#7a4d00;text-decoration:underline dotted #c80}
 .sel{outline:2px solid #d62728}
 .bar{font-family:Inter,Helvetica,Arial,sans-serif;font-size:13px;color:#444;margin:0 0 6px 0}
 .bar button{font-size:12px;margin-right:6px;padding:2px 8px;border:1px solid #bbb;border-radius:4px;
   background:#fff;cursor:pointer}
 .bar button.on{background:#e8f0fa;border-color:#1f77b4}
</style>"""


def _spans(pieces: Sequence[TokenPiece]) -> str:
    spans = []
    for p in pieces:
        cls = "tok" + (" special" if p.special else "") + (" partial" if p.partial else "")
        spans.append(f'<span class="{cls}" data-i="{p.index}" title="{html.escape(p.title)}">{_visible(p.text)}</span>')
    return "".join(spans)


def token_strip_html(pieces: Sequence[TokenPiece]) -> str:
    """A static token strip (no interaction): every token exact, whitespace visible."""
    return _CSS + f'<div class="strip">{_spans(pieces)}</div>'


def attention_strip_html(pieces: Sequence[TokenPiece], pattern: np.ndarray, head_label: str) -> str:
    """Token strip wired to one head's pattern [query, key]: hover a token to see its attention, click to lock.

    Modes: "attends to" shades the keys the hovered token reads from (its row); "attended from" the queries that
    read it (its column). The pattern travels as integers 0..1000 to keep the page small.
    """
    pattern = np.asarray(pattern, dtype=np.float32)
    n = min(len(pieces), pattern.shape[0], MAX_STRIP_TOKENS)
    q = np.rint(np.clip(pattern[:n, :n], 0, 1) * 1000).astype(int).tolist()
    data = json.dumps({"p": q, "t": [p.text for p in pieces[:n]]})
    note = (f" Showing the first {n} of {len(pieces)} tokens." if len(pieces) > n else "")
    head = html.escape(head_label)
    return _CSS + f"""
<div class="bar"><button id="m-to" class="on">attends to</button><button id="m-from">attended from</button>
<span id="info">Head {head}: hover a token to see what it attends to; click it to lock.{html.escape(note)}</span></div>
<div class="strip" id="strip">{_spans(pieces[:n])}</div>
<script>
const D = {data}; let mode = "to", locked = null;
const toks = Array.from(document.querySelectorAll("#strip .tok"));
const info = document.getElementById("info");
function show(i) {{
  const n = D.p.length; let best = -1, bestv = -1;
  toks.forEach((el, j) => {{
    const v = (mode === "to" ? D.p[i][j] : D.p[j][i]) / 1000;
    const rgb = mode === "to" ? "31,119,180" : "255,127,14";
    el.style.background = v > 0.005 ? `rgba(${{rgb}},${{v.toFixed(3)}})` : "";
    el.classList.toggle("sel", j === i);
    if (j !== i && v > bestv) {{ bestv = v; best = j; }}
  }});
  const verb = mode === "to" ? "attends most to" : "is read most by";
  info.textContent = `Head {head} · token ${{i}} ${{JSON.stringify(D.t[i])}} ${{verb}} ` +
    (best >= 0 ? `${{best}} ${{JSON.stringify(D.t[best])}} (${{bestv.toFixed(2)}})` : "nothing else") +
    (locked !== null ? " · locked (click it again to unlock)" : " · click to lock");
}}
toks.forEach((el, i) => {{
  el.addEventListener("mouseenter", () => {{ if (locked === null) show(i); }});
  el.addEventListener("click", () => {{ locked = (locked === i ? null : i); show(i); }});
}});
function setMode(m) {{
  mode = m; document.getElementById("m-to").classList.toggle("on", m === "to");
  document.getElementById("m-from").classList.toggle("on", m === "from");
  show(locked !== null ? locked : toks.length - 1);
}}
document.getElementById("m-to").onclick = () => setMode("to");
document.getElementById("m-from").onclick = () => setMode("from");
if (toks.length) show(toks.length - 1);
</script>"""


def strip_height(pieces: Sequence[TokenPiece], chars_per_line: int = 110) -> int:
    """Pixel height for a strip iframe: lines from newlines and wrapping, 28 px each, plus the mode bar."""
    lines, width = 1, 0
    for p in pieces:
        for ch in p.text:
            if ch == "\n":
                lines, width = lines + 1, 0
            else:
                width += 1
                if width > chars_per_line:
                    lines, width = lines + 1, 0
    return min(900, 50 + 30 * lines)
