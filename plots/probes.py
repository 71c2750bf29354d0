"""Linear-probe figures: accuracy by layer with the majority class, the control task and selectivity."""
from __future__ import annotations

import plotly.graph_objects as go

from plots.common import lines_by_x
from probes.probing.report import ProbeReport


def accuracy_figure(report: ProbeReport, title: str) -> go.Figure:
    """Test accuracy by layer with the control task, selectivity and the majority-class line."""
    series = {"probe (test accuracy)": report.accuracy}
    if report.settings.get("control"):
        series["control task (Hewitt & Liang)"] = report.control_accuracy
        series["selectivity (probe - control)"] = report.selectivity
    fig = lines_by_x(series, report.layers, f"Linear probe accuracy by layer: {title}",
                     "layer (L0 = embeddings, Ln = after block n-1)", "test accuracy")
    fig.add_hline(y=report.majority_accuracy, line_dash="dot", line_color="#7f7f7f",
                  annotation_text=f"majority class {report.majority_accuracy:.1%}", annotation_position="top left")
    low = min([0.0] + [v for v in report.selectivity if v == v])
    return fig.update_layout(yaxis=dict(range=[low - 0.02, 1.02], tickformat=".0%"), height=460)
