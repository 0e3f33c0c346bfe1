"""Data-quality problems (rules.md, "Data-quality problems"): the catalogue B1–B10, W1–W9, and
two the reading of real village files needs (issue #11): B11 a submitted file that cannot be read
(never B10 "未报送" for that village), W10 a row or sheet with content that was set aside for an
unusual reason (a row like a 合计 without the word, a row typed only in unknown columns).

A problem record names the village, the file, sheet and row as the village sees them, the column,
the value found (IDs and names masked), what was found and what to do. Its id is stable: it is
derived from the rule, the village, the sheet, the column and an anchor that identifies the
record itself (a person's or household's ID — as repaired, or as typed when it cannot be — never
the row number or the file name), so the same problem in the same place keeps its id across runs
and across a resubmission that fixes other rows. When one anchor carries the same problem twice
(a person typed twice), the second and later occurrences, in row order, get ``#2``, ``#3``….
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import pandas as pd

BLOCKING = "必须修改"
WARNING = "请核实"
OPEN = "待修改"
ACCEPTED = "已接受"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    blocking: bool
    suggestion: str

    @property
    def severity(self) -> str:
        return BLOCKING if self.blocking else WARNING


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("B1", "身份证号无效", True, "核对户口簿或身份证原件，重新填写18位身份证号（以文本格式录入）"),
        Rule("B2", "身份证号被Excel损坏", True, "将该列设置为文本格式后，按身份证原件重新录入完整号码"),
        Rule("B3", "同一人出现在两户或两个村", True, "核实此人实际所在户，只在一户中保留"),
        Rule("B4", "户与成员无法对应", True, "核对户主身份证号，使成员表与家庭表一一对应"),
        Rule("B5", "户主信息不一致", True, "每户须有且只有一名户主，且其身份证号与家庭表的户主身份证号一致"),
        Rule("B6", "必填项缺失", True, "补填该项"),
        Rule("B7", "取值不在代码表内", True, "按填表说明的代码表选择规范取值"),
        Rule("B8", "金额为负数或不是数字", True, "填写不小于0的数字（单位：元），不写“元”和其他文字"),
        Rule("B9", "漏户或漏人", True, "建档立卡户及其成员须全部入户调查；补调查，或说明原因"),
        Rule("B10", "涉农村未报送调查表", True, "督促该村报送入户调查表"),
        Rule("B11", "报送的文件无法读取", True,
             "按原因修改后重新报送：用Excel或WPS另存为.xlsx，去掉打开密码，"
             "只保留“家庭基本情况”和“家庭成员情况”两张表"),
        Rule("W1", "申报家庭人口与成员数不符", False, "核实家庭人口，与成员表一致"),
        Rule("W2", "性别与身份证号不符", False, "核实性别或身份证号"),
        Rule("W3", "年龄与在校生状况不符", False, "核实在校生状况或身份证号"),
        Rule("W4", "转移性收入合计与分项之和不符", False, "核实转移性收入各分项及合计"),
        Rule("W5", "户类型或脱贫状态与建档立卡系统不符", False, "以建档立卡系统为准，核实后修改"),
        Rule("W6", "疑似算账式脱贫", False, "该村收入刚过标准线的户明显偏多，逐户核实收入"),
        Rule("W7", "年龄异常", False, "核实身份证号"),
        Rule("W8", "各项收入均为0", False, "核实家庭收入"),
        Rule("W9", "联系电话格式不对", False, "填写11位手机号或带区号的固定电话"),
        Rule("W10", "有内容的行或工作表没有读入", False,
             "核实该行（工作表）：如果是一户或一人，补全户主身份证号等后重新报送；如果不是调查数据，可以不改"),
    )
}

# W3: the ages (whole years on the reference date) that fit each 在校生状况. rules.md names 小学,
# 七至九年级, 高中/中职 ("e.g."); 学前教育 is added with a tolerant range. 高职 and 大专及以上 are
# left out: adults study too.
SCHOOL_AGE_RANGES: dict[str, tuple[int, int]] = {
    "学前教育": (2, 7),
    "小学": (5, 15),
    "七至九年级": (11, 18),
    "高中": (14, 21),
    "中职": (14, 21),
}
MAX_AGE = 110  # W7

# The columns of a village's 问题清单 (outputs.md), in order. 文件 is the name of the village's
# file the row is in; 原值 is the value as the village typed it (the list goes back to them).
LIST_COLUMNS = ("问题编号", "规则", "严重程度", "文件", "表", "原文件行号", "户主姓名", "列", "原值", "问题",
                "修改建议", "状态")

PROBLEM_COLUMNS = (
    "problem_id", "rule", "severity", "village_code", "file", "sheet", "row", "column",
    "value", "message", "suggestion", "anchor", "hh_key",
)


@dataclass
class Problem:
    rule: str
    village_code: str | None
    file: str | None
    sheet: str | None
    row: int | None
    column: str | None
    value: str  # already masked
    message: str
    anchor: str  # what identifies the record: an ID as typed, a head ID, a file
    hh_key: str | None = None  # the household it holds back, when it is blocking

    def record(self) -> dict:
        rule = RULES[self.rule]
        out = asdict(self)
        out["problem_id"] = problem_id(self.rule, self.village_code, self.sheet, self.column, self.anchor)
        out["severity"] = rule.severity
        out["suggestion"] = rule.suggestion
        return {k: out[k] for k in PROBLEM_COLUMNS}


def problem_id(rule: str, village: str | None, sheet: str | None, column: str | None, anchor: str) -> str:
    digest = hashlib.sha1(f"{rule}|{village}|{sheet}|{column}|{anchor}".encode()).hexdigest()
    return f"{rule}-{(village or '000000000000')[-6:]}-{digest[:8].upper()}"


def assign_problem_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every problem its stable id; a repeated (rule, village, sheet, column, anchor) gets
    ``#2``, ``#3``… on its anchor in row order, so two problems never share an id."""
    if frame.empty:
        frame["problem_id"] = pd.Series(dtype="string")
        return frame
    frame = frame.copy()
    key = ["rule", "village_code", "sheet", "column", "anchor"]
    filled = frame[key].astype("string").fillna("\x00")
    order = frame.assign(_row=pd.to_numeric(frame["row"], errors="coerce").fillna(-1))
    order = order.sort_values(["_row"], kind="stable")
    rank = filled.loc[order.index].groupby(key, sort=False).cumcount() + 1
    anchors = frame["anchor"].astype("string").fillna("")
    anchors = anchors.where(rank.reindex(frame.index) == 1, anchors + "#" + rank.reindex(frame.index).astype(str))
    frame["anchor"] = anchors
    frame["problem_id"] = [
        problem_id(r, v if isinstance(v, str) else None, s if isinstance(s, str) else None,
                   c if isinstance(c, str) else None, a)
        for r, v, s, c, a in zip(frame["rule"], frame["village_code"], frame["sheet"], frame["column"], anchors)
    ]
    return frame
