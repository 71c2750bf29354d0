"""Figure builders: plotly figures from the plain results of ``probes/`` and ``interp/`` (data in, Figure out).

The only package below the UI that imports plotly; ``probes/`` and ``interp/`` return data, this draws it.
"""
