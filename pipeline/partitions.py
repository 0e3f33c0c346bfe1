"""Partitions: one dynamic partition per village, keyed ``<村代码>_<村名称>`` (e.g.
``210505004201_财神庙村``) so the UI shows the village's name beside its code — Dagster has no
display name for a partition, and a dynamic key may hold any text but a few separators. A village
not in villages.csv (a file with an unknown 村代码) gets its code alone. The code is always the
part before the first ``_``: ``village_code(key)``.

Partitions are added by the survey sensor for villages whose workbooks have arrived and by the
reference sensor for every 涉农 village of villages.csv."""

import dagster as dg

VILLAGES = "villages"
SEPARATOR = "_"
_UNSAFE = str.maketrans({c: "" for c in ",[]*|\\/\n\r\t "})

village_partitions = dg.DynamicPartitionsDefinition(name=VILLAGES)


def partition_key(code: str, name: str | None = None) -> str:
    """The partition key of a village: 村代码_村名称 (村代码 alone when the name is unknown)."""
    clean = (name or "").translate(_UNSAFE)
    return f"{code}{SEPARATOR}{clean}" if clean else code


def village_code(key: str) -> str:
    """The 村代码 of a partition key (old code-only keys included)."""
    return key.split(SEPARATOR, 1)[0]
