"""Direct database snapshots of the local server's users, teams, websites and reports."""

from __future__ import annotations

import json

from conformance import server
from conformance.objects import KEEP_MARK

TABLES = {"user": "user_id", "team": "team_id", "team_user": "team_user_id", "website": "website_id",
          "report": "report_id"}


def sql(info: server.ServerInfo, query: str) -> str:
    """The unaligned answer of one query on the local server's database."""
    return server.psql(info.pg_port, info.database, "-At", "-c", query, what="query").strip()


def snapshot(info: server.ServerInfo) -> dict[str, dict[str, dict]]:
    """{table: {id: row}} read with psql, so that nothing the API hides is missed."""
    result = {}
    for table, key in TABLES.items():
        rows = sql(info, f'SELECT coalesce(json_agg(t), \'[]\') FROM "{table}" t')
        result[table] = {row[key]: row for row in json.loads(rows)}
    return result


def compare(before: dict, after: dict, residue_ids: set[str], prefix: str | None,
            kept_ids: set[str] = frozenset()) -> list[str]:
    """Problems: a pre-existing row changed or vanished, or a new row that is neither reported residue (with the
    run prefix) nor of the kept set (`ucf-keep-*`, with the kept team's members)."""
    problems = []
    for table, rows in before.items():
        for key, row in rows.items():
            if after[table].get(key) != row:
                problems.append(f"{table} {key} was modified or removed")
    for table, rows in after.items():
        for key, row in rows.items():
            if key in before[table]:
                continue
            name = row.get("name") or row.get("username") or ""
            if key in kept_ids or (table == "team_user" and row.get("team_id") in kept_ids):
                if table != "team_user" and not name.startswith(KEEP_MARK):
                    problems.append(f"kept {table} {key} ({name}) lacks the mark {KEEP_MARK}")
            elif key not in residue_ids:
                problems.append(f"new {table} {key} ({name}) is not reported as residue")
            elif not prefix or not name.startswith(prefix):
                problems.append(f"residue {table} {key} ({name}) lacks the run prefix {prefix}")
    return problems
