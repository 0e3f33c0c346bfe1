"""The last part of step 8 of the sample generator: the answer key.

Computed from the generator's own ground truth (the model of ``model.py``, the problems
``plant.py`` planted, the department records ``departments.py`` made) by the rules of rules.md
with the given Settings, never by pipeline code. It is worked out while the workers write the
files (:func:`draft`), and the rows its problems cite are filled in from what they report
(:func:`finish`). Written as ``json.dumps(key, ensure_ascii=False, indent=1)`` would write it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from pipeline import schema as S
from pipeline.sample.model import District, Household, age_on, below
from pipeline.sample.plant import Planted


def cents_str(c: int) -> str:
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def per_capita(net: int, size: int) -> Decimal:
    """Cut down to the cent (rules.md: the shown 年人均纯收入 is floored)."""
    return (Decimal(net // size) / 100).quantize(Decimal("0.01"))


def find_warnings(d: District) -> list:
    """W1–W5, W7–W9 as written in the latest files, from the truth (W6 is under "bunching").

    Each entry's "row" is the row's key in the files' rowmap until the files are written."""
    ref = d.ref
    out = []
    H, M = S.SHEET_HOUSEHOLDS, S.SHEET_MEMBERS
    label = {c.key: c.label for c in S.HOUSEHOLD_COLUMNS}
    mlabel = {c.key: c.label for c in S.MEMBER_COLUMNS}
    school_ages = {"小学": (5, 15), "七至九年级": (11, 18), "高中": (14, 21), "中职": (14, 21)}
    for hh in d.households:
        v = hh.village

        def add(rule, sheet, key, person=None):
            lab = (mlabel if sheet == M else label).get(key) if key else None
            e = {"rule": rule, "village_code": v.code, "file": v.latest, "sheet": sheet,
                 "row": (sheet, hh.key, person.pid if person else None), "column": lab,
                 "head_id": hh.head.pid}
            if person is not None:
                e["person_id"] = person.pid
            out.append(e)

        rows = hh.linked()
        if hh.declared_size is not None and hh.declared_size != len(rows):
            add("W1", H, "declared_size")
        written = [] if hh.no_member_rows else [p for p in hh.members if p.in_survey and p.orphan_head is None]
        for p in written + hh.extra_rows + [p for p in hh.members if p.orphan_head and not hh.no_member_rows]:
            if p.cell and "person_id" in p.cell:
                continue  # no valid ID to compare with
            sex = (p.cell or {}).get("sex", p.sex)
            if sex != ("男" if int(p.pid[16]) % 2 else "女"):
                add("W2", M, "sex", p)
            a = age_on(p.birth, ref)
            if p.school in school_ages:
                lo, hi = school_ages[p.school]
                if not lo <= a <= hi:
                    add("W3", M, "school_status", p)
            if a > 110 or p.birth > ref:
                add("W7", M, "person_id", p)
        if hh.subs is not None and hh.total_written is not None and "B8" not in hh.tags:
            if abs(hh.total_written - sum(hh.subs)) > 100:
                add("W4", H, "transfer_total")
        expected_status = hh.status if hh.kind in ("reg", "removed") else ""
        if hh.declared_type != hh.status_type or (hh.declared_status or "") != (expected_status or ""):
            add("W5", H, "hh_type" if hh.declared_type != hh.status_type else "exit_status")
        if hh.all_zero:
            add("W8", H, None)
        if "w9" in hh.tags:
            add("W9", H, "phone")
    return out


def cited_rows(warnings: list, plants: list[Planted]) -> set:
    """The rows the key cites (as keys of the files' rowmap): the workers report only these."""
    rows = {e["row"] for e in warnings}
    for pl in plants:
        rows.add((S.SHEET_HOUSEHOLDS, pl.hh.key, None))
        if pl.person is not None:
            rows.add((S.SHEET_MEMBERS, pl.hh.key, pl.person.pid))
    return rows


def draft(d: District, book, plants: list[Planted], warnings: list, files) -> tuple[dict, list]:
    """The answer key, but for the rows its problems cite and their order (the files may not
    be written yet): returns (key, [(problem, rowmap key, required)]) for :func:`finish`.

    ``book`` is the department extracts; ``files`` the planned files (``render.Files``)."""
    st = d.settings
    findings = book.evaluate(d.households)
    problems = []
    deferred = [(e, e["row"], True) for e in warnings]
    blocking: dict[int, set] = {}
    for pl in plants:
        hh = pl.hh
        v = hh.village
        p = pl.person
        entry = {"rule": pl.rule, "village_code": v.code, "file": v.latest, "sheet": pl.sheet,
                 "row": None, "column": None, "head_id": hh.head.pid}
        if pl.missed:
            entry["file"] = None
        elif pl.missing:
            deferred.append((entry, (S.SHEET_HOUSEHOLDS, hh.key, None), False))
            entry["person_id"] = p.pid
        elif pl.sheet == S.SHEET_MEMBERS:
            deferred.append((entry, (S.SHEET_MEMBERS, hh.key, p.pid), True))
            entry["person_id"] = p.pid
        else:
            deferred.append((entry, (S.SHEET_HOUSEHOLDS, hh.key, None), True))
        if pl.col:
            cols = S.MEMBER_COLUMNS if pl.sheet == S.SHEET_MEMBERS else S.HOUSEHOLD_COLUMNS
            entry["column"] = next(c.label for c in cols if c.key == pl.col)
        if pl.orphan:
            entry["head_id"] = None  # the row links to no household
        problems.append(entry)
        if pl.rule.startswith("B") and not pl.orphan and not pl.missed:
            blocking.setdefault(hh.key, set()).add(pl.rule)
    problems += warnings
    # B10
    for v in d.villages:
        if "b10" in v.roles:
            problems.append({"rule": "B10", "village_code": v.code, "file": None, "sheet": None, "row": None,
                             "column": None, "head_id": None})
    # households
    entries = []
    bunch_pool: dict[str, list] = {}
    for hh in d.households:
        v = hh.village
        rows = hh.linked()
        size = len(rows)
        blk = sorted(blocking.get(hh.key, ()), key=lambda c: int(c[1:]))
        computable = size > 0 and not hh.unreadable_amount
        net = hh.net if computable else None
        fails = hh.fails()
        f = sorted(findings.get(hh.key, ()), key=lambda c: (c[0] != "X", c))
        hard = [c for c in f if c.startswith("X")]
        annex2 = annex3 = reason = None
        in4 = in5 = in6 = False
        if not blk and computable:
            low5 = below(net, st.monitoring_line, size)
            low45 = below(net, st.identification_line, size)
            low4 = below(net, st.poverty_line, size)
            in5, in6 = low45, low5
            in4 = hh.kind == "reg" and low5
            if hh.exited and (low5 or fails):
                if hard:
                    reason = "排除"
                else:
                    annex2 = "返贫" if (low4 or fails) else "重点扶持"
            if hh.kind in ("ordinary", "foreign", "removed") and (low5 or fails):
                if hard:
                    reason = "排除"
                elif not hh.applied:
                    reason = "未申请"
                elif hh.review != S.REVIEW_PASSED:
                    reason = "评议未通过"
                elif not hh.main_cause:
                    reason = "无致贫原因"
                else:
                    annex3 = "新识别" if (low45 or fails) else "重点扶持"
            bunch_pool.setdefault(v.code, []).append((hh, net, size))
        entries.append({
            "village_code": v.code,
            "head_id": hh.head.pid,
            "hh_no": hh.hh_no,
            "status_type": hh.status_type,
            "exit_status": hh.status,
            "size": size,
            "net_income": cents_str(net) if net is not None else None,
            "per_capita": str(per_capita(net, size)) if net is not None else None,
            "fails_guarantee": fails,
            "main_cause": hh.main_cause or None,
            "applied": hh.applied,
            "review": hh.review,
            "focus": _focus(hh),
            "findings": f,
            "blocking": blk,
            "annex2": annex2,
            "annex3": annex3,
            "left_out_reason": reason,
            "in_annex4": in4,
            "in_annex5": in5,
            "in_annex6": in6,
        })
    bunching = _bunching(st, bunch_pool)
    key = {
        "seed": d.seed,
        "households_requested": d.n,
        "settings": st.to_json(),
        "villages": [{
            "village_code": v.code, "village_name": v.name, "subdistrict_code": v.sub_code,
            "subdistrict_name": v.sub_name, "farming": v.farming, "survey_files": v.files,
            "latest_file": v.latest, "roles": sorted(v.roles),
        } for v in d.villages],
        "registry_files": files.registry_files,
        "unreadable_files": sorted(files.unreadable),
        "ignored_files": sorted(files.ignored),
        "department_files": book.files,
        "households": entries,
        "problems": problems,
        "bunching": bunching,
        "planted": book.planted_key(),
    }
    key["counts"] = _counts(d, book, files, key, entries, problems, findings)  # (no count needs a row)
    return key, deferred


def finish(key: dict, deferred: list, rowmap: dict) -> dict:
    """Fill in the rows the problems cite (the files are written) and sort the problems."""
    for entry, rowkey, required in deferred:
        entry["row"] = rowmap[rowkey] if required else rowmap.get(rowkey)
    key["problems"].sort(key=lambda e: (e["rule"][0], int(e["rule"][1:]), e["village_code"], e["file"] or "",
                                        e["sheet"] or "", e["row"] or 0))
    # The row account of every survey file written (issue #11): per sheet, rows seen = used + set
    # aside by reason, as the reader must give it.
    accounts: dict = {}
    for rowkey, account in rowmap.items():
        if rowkey[0] == "account":
            accounts.setdefault(rowkey[1], []).append(account)
    key["row_accounts"] = {f: sorted(accounts[f], key=lambda a: a["sheet"]) for f in sorted(accounts)}
    return key


def _focus(hh: Household) -> list:
    rows = hh.linked()
    tags = []
    if hh.housing in S.DANGEROUS_HOUSING:
        tags.append("危房户")
    if any(h in S.SERIOUS_HEALTH for p in rows for h in p.health):
        tags.append("大病慢病户")
    if any(p.disabled for p in rows):
        tags.append("残疾户")
    if any(p.dibao for p in rows):
        tags.append("低保户")
    if any(p.tekun for p in rows):
        tags.append("特困户")
    if any(p.age >= 65 for p in rows):
        tags.append("老年户")
    if hh.kind == "removed":
        tags.append("清退户")
    if hh.kind == "foreign":
        tags.append("外籍户")
    return tags


def _bunching(st, pool: dict) -> dict:
    out: dict[str, list] = {}
    for code, items in pool.items():
        flagged = []
        for line in st.low_income_lines:
            hi = line + st.bunching_band
            lo = line - st.bunching_band
            above = [hh for hh, net, size in items if not below(net, line, size) and below(net, hi, size)]
            under = [hh for hh, net, size in items if below(net, line, size) and not below(net, lo, size)]
            if len(above) >= st.bunching_min_above and len(above) > st.bunching_ratio * len(under):
                flagged += [hh.head.pid for hh in above]
        if flagged:
            out[code] = sorted(set(flagged))
    return out


def _counts(d: District, book, files, key: dict, entries: list, problems: list, findings: dict) -> dict:
    def tally(items):
        out: dict[str, int] = {}
        for it in items:
            out[it] = out.get(it, 0) + 1
        return dict(sorted(out.items()))

    held = [e for e in entries if e["blocking"]]
    return {
        "villages": len(d.villages),
        "farming_villages": sum(v.farming for v in d.villages),
        "surveyed_villages": sum(1 for v in d.villages if v.latest),
        "survey_files": sum(len(v.files) for v in d.villages),
        "households": len(entries),
        "persons": sum(e["size"] for e in entries),
        "registry_rows": files.registry_rows,
        "households_by_type": tally(e["status_type"] for e in entries),
        "held_back_households": len(held),
        "problems_by_rule": tally(p["rule"] for p in problems),
        "findings_by_rule": tally(c for e in entries for c in e["findings"]),
        "annex2_households": tally(e["annex2"] for e in entries if e["annex2"]),
        "annex2_persons": sum(e["size"] for e in entries if e["annex2"]),
        "annex3_households": tally(e["annex3"] for e in entries if e["annex3"]),
        "annex3_persons": sum(e["size"] for e in entries if e["annex3"]),
        "annex4_households": sum(e["in_annex4"] for e in entries),
        "annex5_households": sum(e["in_annex5"] for e in entries),
        "annex6_households": sum(e["in_annex6"] for e in entries),
        "left_out": tally(e["left_out_reason"] for e in entries if e["left_out_reason"]),
        "bunching_villages": len(key["bunching"]),
        "bunching_households": sum(len(x) for x in key["bunching"].values()),
        "department_rows": book.row_counts(),
    }


# ------------------------------------------------------------------------------------------
# The answer key as JSON
# ------------------------------------------------------------------------------------------

_encode_str = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) uses


def _json(obj, level: int) -> str:
    """``json.dumps(obj, ensure_ascii=False, indent=1)`` for a value that starts on a line
    indented by ``level`` spaces (the same text, faster for the key's flat household entries)."""
    cls = obj.__class__
    if cls is str:
        return _encode_str(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if cls is int:
        return int.__repr__(obj)
    if cls is list or cls is tuple:
        if not obj:
            return "[]"
        ind = "\n" + " " * (level + 1)
        return "[" + ind + ("," + ind).join([_json(x, level + 1) for x in obj]) + "\n" + " " * level + "]"
    if cls is dict and all(k.__class__ is str for k in obj):
        if not obj:
            return "{}"
        ind = "\n" + " " * (level + 1)
        return "{" + ind + ("," + ind).join([f"{_encode_str(k)}: {_json(v, level + 1)}" for k, v in obj.items()]) \
            + "\n" + " " * level + "}"
    # anything else (floats, other keys, subclasses): json itself, moved to this indentation
    # (JSON text has no raw line breaks inside strings)
    return json.dumps(obj, ensure_ascii=False, indent=1).replace("\n", "\n" + " " * level)


def _split_at(obj: dict, stream: str) -> tuple[str, str]:
    """The JSON text of ``obj`` before and after the value of ``obj[stream]``."""
    marker = "\x00" + stream + "\x00"
    text = json.dumps({k: (marker if k == stream else v) for k, v in obj.items()}, ensure_ascii=False, indent=1)
    head, tail = text.split(_encode_str(marker))
    return head, tail


def write_json_head(path: Path, obj: dict, stream: str) -> None:
    """Write ``json.dumps(obj, ensure_ascii=False, indent=1)`` to ``path`` (UTF-8) up to and
    including the list ``obj[stream]`` (a slice at a time, never built as one string); the rest
    is :func:`write_json_tail`'s (the values after the list may still change until then)."""
    head, _ = _split_at(obj, stream)
    items = obj[stream]
    with open(path, "w", encoding="utf-8") as f:
        f.write(head)
        if not items:
            f.write("[]")
        else:
            f.write("[\n  ")
            sep = ",\n  "
            for i in range(0, len(items), 2000):
                if i:
                    f.write(sep)
                f.write(sep.join([_json(e, 2) for e in items[i:i + 2000]]))
            f.write("\n ]")


def write_json_tail(path: Path, obj: dict, stream: str) -> None:
    """Append what follows ``obj[stream]`` to the file :func:`write_json_head` began."""
    _, tail = _split_at(obj, stream)
    with open(path, "a", encoding="utf-8") as f:
        f.write(tail)


def write_json(path: Path, obj: dict, stream: str) -> None:
    """``json.dumps(obj, ensure_ascii=False, indent=1)`` to ``path``, ``obj[stream]`` streamed."""
    write_json_head(path, obj, stream)
    write_json_tail(path, obj, stream)

