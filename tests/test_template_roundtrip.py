"""附件1 round trip: the blank template the pipeline hands out, filled in as a village would, reads
back with no problem at all."""

import dagster as dg
from builders import household, make_id, member

from pipeline.assets.annex1 import survey_template, template_filename
from pipeline.io.inputs import FILE_READ, ingest_surveys
from pipeline.io.template import fill_template_for_test
from pipeline.resources import PathsResource, SettingsResource
from pipeline.settings import Settings

VILLAGE = "210505004201"


def test_template_asset_filled_by_a_village_ingests_with_zero_problems(tmp_path):
    reports, raw = tmp_path / "reports", tmp_path / "raw"
    result = dg.materialize([survey_template], resources={
        "paths": PathsResource(raw_dir=str(raw), reports_dir=str(reports)), "settings": SettingsResource()})
    assert result.success
    template = reports / "template" / template_filename(Settings())
    assert template.name == "附件1_2019年脱贫质量回头看入户调查表.xlsx"
    meta = result.asset_materializations_for_node("survey_template")[0].metadata
    assert meta["下载（download）"].value.endswith("/template/%E9%99%84%E4%BB%B61_2019%E5%B9%B4%E8%84%B1%E8%B4%AB%E8%B4%A8"
                                           "%E9%87%8F%E5%9B%9E%E5%A4%B4%E7%9C%8B%E5%85%A5%E6%88%B7%E8%B0%83%E6%9F%A5"
                                           "%E8%A1%A8.xlsx")

    h1, h2 = make_id("19520303", 11), make_id("19781212", 21)
    wife, child = make_id("19550505", 12), make_id("20080808", 23)
    households = [
        household(h1, seq=1, hh_type="一般农户", declared_size=2, wage_income=12000, transfer_total=1200,
                  pension_income=1200),
        household(h2, seq=2, hh_type="一般农户", declared_size=2, business_income=8000.5, business_expense=500,
                  main_cause="因病", other_causes="因残、缺技术", applied="是", review_result="通过"),
    ]
    for row in households:
        row.pop("seq")
    members = [
        member(h1, h1, name="张大山"), member(h1, wife, "配偶", name="李秀英"),
        member(h2, h2, name="王强", health="长期慢性病"),
        member(h2, child, "之子", name="王小明", education="小学", school_status="小学", labor_skill="无劳动力"),
    ]
    for row in members:
        row.pop("seq")
    filled = raw / "surveys" / "思山岭街道" / "财神庙村.xlsx"
    fill_template_for_test(template, filled, VILLAGE, "财神庙村", "思山岭街道", households, members)

    read = ingest_surveys(raw)
    assert list(read.files["status"]) == [FILE_READ]
    assert read.files.loc[0, "village_code"] == VILLAGE
    assert [p.record() for p in read.problems] == []
    assert list(read.households["head_id"]) == [h1, h2]
    assert list(read.members["person_id"]) == [h1, wife, h2, child]
    hh = read.households.set_index("head_id")
    assert hh.loc[h1, "wage_income"] == 1_200_000 and hh.loc[h2, "business_income"] == 800_050  # cents
    assert hh.loc[h2, "other_causes"] == "因残、缺技术"
