"""Update one marked section of docs/benchmarks.md in place."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def update_section(doc: str | Path, key: str, markdown: str, first: bool = False) -> Path:
    """Replace the text between ``<!-- bench:KEY -->`` and ``<!-- /bench:KEY -->`` (if absent,
    append the section, or with ``first`` insert it before the first ``<!--`` marked section)."""
    doc = Path(doc)
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    elif first and "\n<!-- " in text:
        head, tail = text.split("\n<!-- ", 1)
        text = f"{head}\n{block}\n\n<!-- {tail}"
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
    return doc


def publish(
    markdown: str,
    payload: dict[str, Any],
    key: str,
    json_path: str | None,
    doc: str | None,
    first: bool = False,
) -> None:
    """Print a bench section's ``markdown``, write ``payload`` to ``json_path`` and replace
    section ``key`` of the Markdown file ``doc`` (each when given), saying where."""
    print(markdown)
    if json_path:
        print(f"json: {write_json(json_path, payload)}")
    if doc:
        print(f"updated: {update_section(doc, key, markdown, first=first)}")
