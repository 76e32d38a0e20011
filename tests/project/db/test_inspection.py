"""showdb, showtable and showmodel on the domain apps: text, JSON, errors, no password."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace

import pytest

from project.db import inspection
from project.db.url import DatabaseURL
from tests.support import error_line, ok, run_manage

PASSWORD = "S3cretPw"


def manage(url: DatabaseURL, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` on ``url`` with a password in it (a trust-auth server ignores it)."""
    secret = url if url.password else replace(url, password=PASSWORD)
    result = run_manage(*args, env={"DATABASE_URL": secret.render(hide_password=False)})
    assert PASSWORD not in result.stdout + result.stderr
    return result


def test_showdb_text_lists_server_migrations_and_tables(db_url: DatabaseURL) -> None:
    out = ok(manage(db_url, "showdb"))
    assert f"Database   {db_url.database} (" in out
    assert re.search(r"^Server     PostgreSQL \d+", out, re.MULTILINE)
    assert "Sessions   " in out
    assert "active" in out
    assert "0 pending" in out
    assert "Replicas   none configured" in out
    table_lines = {line.split()[0] for line in out.splitlines()[7:] if line}
    assert {"tools", "agents", "agent_tools", "workflows", "nodes", "edges"} <= table_lines
    assert "***" in out  # the URL is shown, its password masked


def test_showdb_json_for_scripts(db_url: DatabaseURL) -> None:
    data = json.loads(ok(manage(db_url, "showdb", "--json")))
    assert data["database"] == db_url.database
    assert data["replicas"] == []
    assert data["migrations"]["pending"] == 0
    assert data["migrations"]["current"] == data["migrations"]["heads"]
    assert data["connections"].get("active", 0) >= 1
    tables = {t["name"]: t for t in data["tables"]}
    assert tables["tools"]["index_bytes"] > 0
    assert set(tables["tools"]) == {"name", "estimated_rows", "table_bytes", "index_bytes"}


def test_showdb_on_an_unmigrated_database_counts_every_revision_pending(
    scratch_db: DatabaseURL,
) -> None:
    data = json.loads(ok(manage(scratch_db, "showdb", "--json")))
    assert data["migrations"]["current"] == []
    assert data["migrations"]["pending"] >= 1
    assert data["tables"] == []
    assert "(no tables)" in ok(manage(scratch_db, "showdb"))


def test_showtable_shows_the_partial_unique_index_on_tool_names(db_url: DatabaseURL) -> None:
    out = ok(manage(db_url, "showtable", "tools"))
    assert "Model tools.Tool" in out
    assert "uq_tools_name_live [unique, partial]" in out
    assert "WHERE (deleted_at IS NULL)" in out
    assert "tool_type    character varying(50)     not null" in out
    assert "fk_nodes_tool_id_tools on nodes" in out  # a foreign key coming in

    data = json.loads(ok(manage(db_url, "showtable", "tools", "--json")))
    index = {i["name"]: i for i in data["indexes"]}["uq_tools_name_live"]
    assert (index["unique"], index["partial"], index["valid"]) == (True, True, True)
    assert not index["primary"]
    assert index["size_bytes"] > 0
    columns = {c["name"]: c for c in data["columns"]}
    assert columns["config"] == {
        "name": "config",
        "type": "jsonb",
        "nullable": False,
        "default": "'{}'::jsonb",
    }
    assert columns["deleted_at"]["nullable"]
    assert {fk["table"] for fk in data["foreign_keys_in"]} == {"agent_tools", "nodes"}


def test_showtable_shows_composite_foreign_keys_and_checks(db_url: DatabaseURL) -> None:
    data = json.loads(ok(manage(db_url, "showtable", "edges", "--json")))
    assert data["model"] == "workflows.Edge"
    out = {fk["name"]: fk for fk in data["foreign_keys_out"]}
    source = out["fk_edges_source_node_in_workflow"]
    assert source["references"] == "nodes"
    assert "(workflow_id, source_node_id) REFERENCES nodes(workflow_id, id)" in source["definition"]
    assert [c["name"] for c in data["checks"]] == ["ck_edges_no_self_loop"]
    association = json.loads(ok(manage(db_url, "showtable", "agent_tools", "--json")))
    assert association["model"] == "agents.Agent.tools (association)"


def test_showmodel_shows_the_workflows_relationships_and_mixins(db_url: DatabaseURL) -> None:
    out = ok(manage(db_url, "showmodel", "Workflow"))
    assert "Model workflows.Workflow (apps.workflows.models)" in out
    assert "nodes: one-to-many -> workflows.Node (lazy=raise, back_populates=workflow)" in out
    assert "Soft delete  yes (cascades to: nodes, edges)" in out
    assert "Versioned    yes" in out
    assert "trigger_type    TriggerType" in out

    data = json.loads(ok(manage(db_url, "showmodel", "workflows.Workflow", "--json")))
    relationships = {r["name"]: r for r in data["relationships"]}
    assert set(relationships) == {"nodes", "edges"}
    assert relationships["edges"]["kind"] == "one-to-many"
    assert relationships["edges"]["target"] == "workflows.Edge"
    assert "delete-orphan" in relationships["edges"]["cascade"]
    assert data["soft_delete_cascade"] == ["nodes", "edges"]
    assert {"VersionedMixin", "SoftDeleteMixin"} <= set(data["mixins"])
    node = json.loads(ok(manage(db_url, "showmodel", "node", "--json")))
    kinds = {r["name"]: (r["kind"], r["target"], r["lazy"]) for r in node["relationships"]}
    assert kinds["workflow"] == ("many-to-one", "workflows.Workflow", "raise")
    assert kinds["tool"] == ("many-to-one", "tools.Tool", "raise")
    fields = {f["name"]: f for f in node["fields"]}
    assert fields["tool_id"]["foreign_key"] == "tools.id"
    assert fields["tool_id"]["nullable"]
    assert fields["node_type"]["python_type"] == "NodeType"


def test_showmodel_of_a_many_to_many_and_a_mixin_model() -> None:
    agent = inspection.describe_model("agents.Agent")
    (tools,) = agent.relationships
    assert (tools.kind, tools.target) == ("many-to-many", "tools.Tool")
    assert tools.secondary == "agent_tools"
    run = inspection.describe_model("NodeExecution")
    assert "RunMixin" in run.mixins
    assert not run.versioned
    assert run.soft_delete_cascade == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("showtable", "tool"), "Error: unknown table 'tool'; did you mean 'tools'?"),
        (("showmodel", "Wrkflow"), "Error: unknown model 'Wrkflow'; did you mean 'Workflow'?"),
        (("showmodel", "zzzz"), "Error: unknown model 'zzzz'"),
    ],
)
def test_unknown_names_exit_1_with_did_you_mean(
    db_url: DatabaseURL, args: tuple[str, ...], message: str
) -> None:
    assert error_line(manage(db_url, *args)) == message


async def test_showdb_counts_rows_of_a_table_never_analyzed(scratch_db: DatabaseURL) -> None:
    from project.db import admin as dbadmin

    conn = await dbadmin.connect(scratch_db)
    try:
        await conn.execute("CREATE TABLE fresh (x int)")
        await conn.execute("INSERT INTO fresh SELECT generate_series(1, 3)")
        await conn.execute("SELECT pg_stat_force_next_flush()")  # no wait for the stats
    finally:
        await conn.close()
    data = json.loads(ok(manage(scratch_db, "showdb", "--json")))
    (fresh,) = [t for t in data["tables"] if t["name"] == "fresh"]
    assert fresh["estimated_rows"] == 3
