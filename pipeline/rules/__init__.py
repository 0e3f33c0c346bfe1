"""The rules of ../shared/spec/rules.md as plain functions and SQL, callable without Dagster.

One module per section of rules.md: ``ids`` (Resident ID numbers), ``income`` (Income),
``status`` (Household status), ``guarantees`` (两不愁三保障 and focus groups), ``crosscheck``
(X1–X4, D1–D5), ``classification`` (附件2–6), ``problems`` (B1–B10, W1–W9).
"""
