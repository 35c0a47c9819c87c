"""Evaluation that no pipeline step uses: the independent judge that grades per-sample figures."""
