"""Reports: the 附件 tables as printable Excel drafts under reports/draft/."""


import datetime as dt

import dagster as dg

from pipeline.io.excel import summarize, write_annex_workbook
from pipeline.metadata import download_links, masked_sample
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.rules.annex import AMOUNT_COLUMNS, ANNEXES, TEXT_COLUMNS, Annex, annex_frame, annex_title

GROUP = "reports"
DRAFT_DIR = "draft"


def build_annex_asset(annex: Annex) -> dg.AssetsDefinition:
    @dg.asset(name=annex.key, group_name=GROUP, pool=WAREHOUSE_POOL, kinds={"excel"}, deps=["classification"],
              description=f"{annex.filename.removesuffix('.xlsx')}: the draft under reports/{DRAFT_DIR}/, "
                          "laid out to print and file as it is (明细, 汇总, 设置).")
    def _annex(paths: PathsResource, warehouse: WarehouseResource, settings: SettingsResource) -> dg.MaterializeResult:
        s = settings.get()
        with warehouse.connect(read_only=True) as con:
            rows = annex_frame(con, annex)
        path = paths.report_path(DRAFT_DIR, annex.filename)
        summary = summarize(rows, by="办事处", household_key="_household", unit=annex.unit,
                            split_by=annex.split_by)
        _write(path, annex, rows, summary, s)
        per = rows.groupby("办事处")["_household"].nunique().to_dict() if len(rows) else {}
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(rows),
            "households": int(rows["_household"].nunique()) if len(rows) else 0,
            "households per 办事处": dg.MetadataValue.json({k: int(v) for k, v in per.items()}),
            "sample (masked)": masked_sample(rows),
            **download_links(paths, path),
        })

    return _annex


def _write(path, annex: Annex, rows, summary, settings):
    return write_annex_workbook(
        path, title=annex_title(annex, settings), columns=annex.columns, rows=rows,
        summary=summary, settings=settings, generated_at=dt.datetime.now().replace(microsecond=0),
        text_columns=TEXT_COLUMNS, amount_columns=AMOUNT_COLUMNS, unit=annex.unit, household_key="_household",
    )


annex_assets = [build_annex_asset(a) for a in ANNEXES.values()]
