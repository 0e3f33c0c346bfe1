"""Household status (rules.md, "Household status"): the registry is authoritative.

建档立卡户: some member's ID is in the registry with a status other than 清退; the household takes
that registry household's 脱贫状态. 历年清退户: members are in the registry, all 清退. 一般农户:
no member is in the registry. Age in whole years on the reference date, from the ID.
"""

def status_text_sql(status_type: str, registry_status: str) -> str:
    """The household's status as every output writes it, one way: ``建档立卡户·已脱贫(享受政策)``
    for a registered household (with its registry 脱贫状态), else ``历年清退户`` / ``一般农户``."""
    return (f"CASE WHEN {status_type} = '建档立卡户' AND {registry_status} IS NOT NULL "
            f"THEN {status_type} || '·' || {registry_status} ELSE {status_type} END")


MEMBERS_SQL = """
CREATE OR REPLACE TABLE members AS
SELECT m.village_code || '|' || m.file || '|' || m.row AS member_uid, m.*,
       TRY_STRPTIME(substr(m.person_id, 7, 8), '%Y%m%d')::DATE AS birth_date,
       CASE WHEN m.person_id IS NULL THEN NULL
            WHEN CAST(substr(m.person_id, 17, 1) AS INTEGER) % 2 = 1 THEN '男' ELSE '女' END AS id_sex,
       year({ref_date}) - year(birth_date)
         - CASE WHEN strftime({ref_date}, '%m%d') < strftime(birth_date, '%m%d') THEN 1 ELSE 0 END AS age
FROM stg_members m;
"""

STATUS_SQL = """
CREATE OR REPLACE TABLE household_status AS
WITH matched AS (
    SELECT m.hh_key, r.hh_no, r.status, r.poor_attribute, r.exit_year
    FROM members m JOIN registry r ON r.person_id = m.person_id
    WHERE m.hh_key IS NOT NULL AND m.person_id IS NOT NULL
),
active AS (  -- the registry household most of the household's members belong to
    SELECT hh_key, hh_no, any_value(status) AS status, any_value(poor_attribute) AS poor_attribute,
           max(exit_year) AS exit_year,
           row_number() OVER (PARTITION BY hh_key ORDER BY count(*) DESC, hh_no) AS rank
    FROM matched WHERE status <> '清退'
    GROUP BY hh_key, hh_no
),
any_match AS (SELECT hh_key, count(*) AS matched FROM matched GROUP BY hh_key)
SELECT h.hh_key,
       CASE WHEN a.hh_key IS NOT NULL THEN '建档立卡户'
            WHEN x.hh_key IS NOT NULL THEN '历年清退户'
            ELSE '一般农户' END AS status_type,
       a.hh_no AS registry_hh_no,
       a.status AS registry_status,
       a.poor_attribute,
       a.exit_year,
       a.status IN ('已脱贫(享受政策)', '已脱贫(不再享受政策)') AS exited
FROM (SELECT DISTINCT hh_key FROM households WHERE hh_key IS NOT NULL) h
LEFT JOIN active a ON a.hh_key = h.hh_key AND a.rank = 1
LEFT JOIN any_match x ON x.hh_key = h.hh_key;
"""
