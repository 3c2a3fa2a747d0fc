"""pandas tables to strict JSON and Markdown (reports, docs, benchmark sections), without the
optional ``tabulate`` dependency."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (index levels first); NaN becomes None, numpy scalars Python ones."""
    records = []
    for row in table.reset_index().to_dict(orient="records"):
        out: dict[str, Any] = {}
        for k, v in row.items():
            v = v.item() if isinstance(v, np.generic) else v
            out[str(k)] = None if isinstance(v, float) and not np.isfinite(v) else v
        records.append(out)
    return records


def to_json(table: pd.DataFrame, indent: int | None = 2) -> str:
    """The table as a JSON array of row objects (strict JSON: missing values are null)."""
    return json.dumps(to_records(table), indent=indent, allow_nan=False, default=str)


def to_markdown(
    table: pd.DataFrame, digits: int = 4, labels: Mapping[str, str] | None = None
) -> str:
    """A GitHub-flavoured Markdown table: floats to ``digits`` significant digits, missing values
    as "—", numeric columns right-aligned, column heads renamed by ``labels``."""
    flat = table.reset_index()
    labels = labels or {}
    heads = [labels.get(str(c), str(c)) for c in flat.columns]
    numeric = [pd.api.types.is_numeric_dtype(flat[c]) for c in flat.columns]

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return f"{float(v):.{digits}g}" if np.isfinite(v) else "—"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in heads) + " |"]
    lines.append("|" + "|".join("---:" if num else ":---" for num in numeric) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in flat.itertuples(False)]
    return "\n".join(lines) + "\n"
