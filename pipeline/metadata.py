"""Dagster metadata for report assets: download links and masked samples.

Metadata is stored in the Dagster instance and shown to anyone who opens the UI, so it carries
counts, links and samples with every name and ID masked (outputs.md, "What never leaves in the
clear") — never a row as it is in the file.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.privacy import mask_id, mask_name, mask_text

# Column labels holding a name or an ID in the outputs (and their English keys in the warehouse).
NAME_COLUMNS = frozenset({"户主姓名", "姓名", "head_name", "name", "签字人"})
ID_COLUMNS = frozenset({"户主身份证号", "身份证号", "证件号码", "户编号", "head_id", "person_id", "hh_no"})
PHONE_COLUMNS = frozenset({"联系电话", "phone"})
# Free text may hold anything a village typed (a name, an address): never sampled.
FREE_TEXT_COLUMNS = frozenset({"备注", "note", "意见", "comment"})
SAMPLE_ROWS = 3
DOWNLOAD = "下载（download）"


def download_links(paths, *files: Path) -> dict[str, dg.MetadataValue]:
    """``download`` (the file server's link) and ``path`` for one file, or one link per file."""
    if len(files) == 1:
        return {DOWNLOAD: dg.MetadataValue.url(paths.download_url(files[0])),
                "路径（path）": dg.MetadataValue.path(str(Path(files[0]).resolve()))}
    return {f"下载 {Path(f).name}（download）": dg.MetadataValue.url(paths.download_url(f)) for f in files}


def _mask(column: str, value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    if column in NAME_COLUMNS:
        return mask_name(value)
    if column in ID_COLUMNS:
        return mask_id(value)
    if column in PHONE_COLUMNS:
        text = str(value)
        return text[:3] + "*" * max(0, len(text) - 3)
    return mask_text(str(value))[:40]


def masked_sample(frame: pd.DataFrame, n: int = SAMPLE_ROWS, columns: list[str] | None = None) -> dg.MetadataValue:
    """The first ``n`` rows as a Markdown table, names as 张* and IDs as 210505********123X."""
    columns = [c for c in (columns or list(frame.columns))
               if not str(c).startswith("_") and c not in FREE_TEXT_COLUMNS]
    if frame.empty or not columns:
        return dg.MetadataValue.md("（无）")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.head(n).iterrows():
        cells = [_mask(c, row[c]).replace("|", "/").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def counts_by(frame: pd.DataFrame, column: str, key: str | None = None) -> dg.MetadataValue:
    """Rows (or distinct ``key`` values) per value of ``column``, e.g. households per 办事处."""
    if frame.empty or column not in frame.columns:
        return dg.MetadataValue.json({})
    grouped = frame.groupby(frame[column].fillna("（未填）"))
    counts = grouped[key].nunique() if key else grouped.size()
    return dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()})
