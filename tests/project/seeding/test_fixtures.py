"""dumpdata and loaddata: round trips byte for byte, upserts, streams, and refuses bad input
with one line naming the file and the record, leaving the database unchanged."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.seeding import fixtures
from tests.support import ROOT, error_line, ok, run_manage


def manage(url: DatabaseURL, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` on ``url``."""
    return run_manage(*args, env={"DATABASE_URL": url.render(hide_password=False)})


@pytest.fixture
def source(transactional_db: AsyncEngine, db_url: DatabaseURL) -> DatabaseURL:
    """Return this worker's database, seeded (emptied after the test)."""
    ok(manage(db_url, "seed", "--count", "300", "--random-seed", "7"))
    return db_url


@pytest.fixture
def target(scratch_db: DatabaseURL) -> DatabaseURL:
    """Return a freshly migrated, empty database."""
    ok(manage(scratch_db, "migrate"))
    return scratch_db


async def sql(url: DatabaseURL, statement: str) -> Any:
    """Run ``statement`` on ``url`` and return its first value."""
    conn = await dbadmin.connect(url)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


def records(path: Path) -> list[dict[str, Any]]:
    """Return the records of a .json fixture."""
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data


def test_dump_load_dump_is_byte_identical_and_a_reload_changes_nothing(
    source: DatabaseURL, target: DatabaseURL, tmp_path: Path
) -> None:
    first, second, third = (tmp_path / f"dump{i}.json" for i in range(3))
    ok(manage(source, "dumpdata", "-o", str(first)))
    loaded = ok(manage(target, "loaddata", str(first)))
    assert loaded.startswith(f"Loaded {len(records(first))} records from 1 file; ")
    ok(manage(target, "dumpdata", "-o", str(second)))
    assert first.read_bytes() == second.read_bytes()
    again = ok(manage(target, "loaddata", str(first)))
    assert again.endswith("; 0 rows inserted or changed\n")
    ok(manage(target, "dumpdata", "-o", str(third)))
    assert third.read_bytes() == first.read_bytes()

    data = records(first)
    labels = [r["model"] for r in data]
    # Models in dependency order, rows by key, every column including the timestamps.
    assert labels.index("tools.Tool") < labels.index("workflows.Node")
    assert labels.index("workflows.Node") < labels.index("executions.NodeExecution")
    tools = [r for r in data if r["model"] == "tools.Tool"]
    assert [r["pk"] for r in tools] == sorted(r["pk"] for r in tools)
    assert {"created_at", "updated_at", "deleted_at"} <= set(tools[0]["fields"])
    agent = next(r for r in data if r["model"] == "agents.Agent")
    assert agent["fields"]["tools"] == sorted(agent["fields"]["tools"])
    assert agent["fields"]["tools"]  # the many-to-many travels as a list of keys


def test_jsonl_and_gzip_are_deterministic_and_load(
    source: DatabaseURL, target: DatabaseURL, tmp_path: Path
) -> None:
    plain, packed, repacked = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    ok(manage(source, "dumpdata", "-o", str(plain)))
    ok(manage(source, "dumpdata", "-o", str(packed)))
    ok(manage(source, "dumpdata", "-o", str(repacked)))
    assert packed.read_bytes() == repacked.read_bytes()  # no timestamp in the gzip header
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    first_line = json.loads(plain.read_text().splitlines()[0])
    assert set(first_line) == {"model", "pk", "fields"}
    ok(manage(target, "loaddata", str(packed)))
    json_dump = tmp_path / "c.json"
    ok(manage(source, "dumpdata", "-o", str(json_dump)))
    assert ok(manage(target, "dumpdata")) == json_dump.read_text()  # stdout by default


def test_records_are_ordered_across_files_by_their_foreign_keys(
    source: DatabaseURL, target: DatabaseURL, tmp_path: Path
) -> None:
    executions, graph = tmp_path / "runs.json", tmp_path / "graph.jsonl"
    ok(manage(source, "dumpdata", "executions", "-o", str(executions)))
    ok(manage(source, "dumpdata", "tools", "agents", "workflows", "-o", str(graph)))
    assert {r["model"] for r in records(executions)} == {
        "executions.WorkflowExecution",
        "executions.NodeExecution",
    }
    ok(manage(target, "loaddata", str(executions), str(graph)))  # children first
    whole = tmp_path / "whole.json"
    ok(manage(source, "dumpdata", "-o", str(whole)))
    assert ok(manage(target, "dumpdata")) == whole.read_text()


async def test_soft_deleted_rows_and_what_hangs_off_them_are_left_out(
    source: DatabaseURL, tmp_path: Path
) -> None:
    used = "SELECT tool_id FROM nodes JOIN agent_tools USING (tool_id) LIMIT 1"
    rsi = str(await sql(source, used))
    await sql(source, f"UPDATE tools SET deleted_at = now() WHERE id = '{rsi}'")
    kept, everything = tmp_path / "kept.json", tmp_path / "all.json"
    await fixtures.dump(source, ["tools", "agents", "workflows.Node"], kept)
    await fixtures.dump(
        source, ["tools", "agents", "workflows.Node"], everything, include_deleted=True
    )
    live = records(kept)
    assert rsi not in {r["pk"] for r in live}
    assert all(rsi not in r["fields"].get("tools", []) for r in live)
    assert all(r["fields"].get("tool_id") != rsi for r in live)
    every = records(everything)
    assert rsi in {r["pk"] for r in every}
    assert any(r["fields"].get("tool_id") == rsi for r in every)

    # The rule stays, but a dump says what it left out and why.
    nodes = sum(r["model"] == "workflows.Node" for r in every)
    dropped = nodes - sum(r["model"] == "workflows.Node" for r in live)
    assert dropped > 0
    result = manage(source, "dumpdata", "tools", "agents", "workflows.Node", "-o", str(kept))
    ok(result)
    assert result.stderr.splitlines()[-1] == (
        f"Note: left out {dropped} nodes that reference soft-deleted rows; "
        "--include-deleted keeps them"
    )
    assert records(kept) == live
    result = manage(source, "dumpdata", "tools", "--include-deleted", "-o", str(kept))
    assert "Note:" not in ok(result) + result.stderr


def test_loaddata_upserts_on_the_key_and_replaces_many_to_many_sets(
    source: DatabaseURL, target: DatabaseURL, tmp_path: Path
) -> None:
    dump = tmp_path / "d.json"
    ok(manage(source, "dumpdata", "tools", "agents", "-o", str(dump)))
    ok(manage(target, "loaddata", str(dump)))
    data = records(dump)
    tool = next(r for r in data if r["model"] == "tools.Tool")
    agent = next(r for r in data if r["model"] == "agents.Agent" and len(r["fields"]["tools"]) > 1)
    tool["fields"]["description"] = "changed by a fixture"
    dropped = len(agent["fields"]["tools"]) - 1
    agent["fields"]["tools"] = agent["fields"]["tools"][:1]
    edit = tmp_path / "edit.json"
    edit.write_text(json.dumps([tool, agent]))
    # One tool updated; the agent's row is as stored, its set loses the dropped links.
    expected = f"; {1 + dropped} rows inserted or changed\n"
    assert ok(manage(target, "loaddata", str(edit))).endswith(expected)
    out = records_from(manage(target, "dumpdata", "tools.Tool", "agents.agent"))
    by_pk = {r["pk"]: r for r in out}
    assert by_pk[tool["pk"]]["fields"]["description"] == "changed by a fixture"
    assert by_pk[agent["pk"]]["fields"]["tools"] == agent["fields"]["tools"]
    assert len(out) == len(data)  # updated in place, nothing duplicated


def records_from(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Return the records a dump printed."""
    data: list[dict[str, Any]] = json.loads(ok(result))
    return data


def _bad_inputs(data: list[dict[str, Any]], tmp_path: Path) -> list[tuple[Path, str]]:
    """Return bad fixture files and a fragment of the one line each must give."""
    tool = next(r for r in data if r["model"] == "tools.Tool")
    node = next(r for r in data if r["model"] == "workflows.Node")
    workflow = next(r for r in data if r["model"] == "workflows.Workflow")
    changed = {**tool, "fields": {**tool["fields"], "description": "must not be written"}}

    def variant(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {**record, "fields": {**record["fields"], **fields}}

    cases: list[tuple[str, Any, str]] = [
        (
            "dangling.json",
            [changed, variant(node, workflow_id="01a23189-0000-7000-8000-000000000000")],
            "dangling.json, record 2 (nodes): workflow_id=01a23189-0000-7000-8000-000000000000 "
            "matches no row of workflows",
        ),
        (
            "model.json",
            [changed, {**tool, "model": "tools.Tol"}],
            "model.json, record 2: unknown model 'tools.Tol'; did you mean 'tools.Tool'?",
        ),
        (
            "field.json",
            [changed, variant(tool, descripton="x")],
            f"field.json, record 2: tools.Tool {tool['pk']}: unknown field of tools.Tool "
            "'descripton'; did you mean 'description'?",
        ),
        (
            "enum.json",
            [changed, variant(tool, tool_type="telepathy")],
            "enum.json, record 2: tools.Tool " + tool["pk"] + ": field tool_type: 'telepathy' "
            "is not a valid ToolType",
        ),
        (
            "type.json",
            [changed, variant(tool, created_at="yesterday")],
            "field created_at: 'yesterday' is not an ISO 8601 date and time",
        ),
        (
            "uuid.json",
            [changed, {**tool, "pk": "not-a-uuid"}],
            "field id: 'not-a-uuid' is not a UUID",
        ),
        ("long.json", [changed, variant(tool, name="x" * 201)], "field name: is 201 characters"),
        ("null.json", [changed, variant(tool, name=None)], "field name must not be null"),
        (
            "int32.json",
            [changed, variant(workflow, version=99999999999)],
            "int32.json, record 2: workflows.Workflow " + workflow["pk"] + ": field version: "
            "99999999999 "
            "is out of range for integer",
        ),
        (
            "nul.json",
            [changed, variant(tool, description="a\x00b")],
            "nul.json, record 2: tools.Tool " + tool["pk"] + ": field description: holds a NUL",
        ),
        (
            "jsonnul.json",
            [changed, variant(tool, config={"deep": ["x", {"k": "a\x00"}]})],
            "jsonnul.json, record 2: tools.Tool " + tool["pk"] + ": field config: holds a NUL",
        ),
        (
            "jsoninf.json",
            [changed, variant(tool, config={"big": float("inf")})],
            "jsoninf.json, record 2: tools.Tool " + tool["pk"] + ": field config: holds a number "
            "that is not finite",
        ),
        (
            "float.json",
            [changed, variant(node, position_x=float("inf"))],
            "float.json, record 2: workflows.Node " + node["pk"] + ": field position_x: inf is "
            "not a finite number",
        ),
        (
            "utc.json",
            [changed, variant(tool, created_at="0001-01-01T00:00:00+05:00")],
            "utc.json, record 2: tools.Tool " + tool["pk"] + ": field created_at: "
            "'0001-01-01T00:00:00+05:00' is out of range in UTC",
        ),
        (
            "check.json",
            [changed, node, variant(node, node_type="agent", tool_id=None, agent_id=None)],
            "check.json, record 3 (nodes): breaks ck_nodes_agent_iff_agent_node",
        ),
        (
            "unique.json",
            [changed, {**tool, "pk": "01a23189-0000-7000-8000-00000000000a"}],
            "unique.json, record 2 (tools): breaks uq_tools_name_live (Key (name)=",
        ),
    ]
    files = []
    for name, content, fragment in cases:
        path = tmp_path / name
        path.write_text(json.dumps(content))
        files.append((path, fragment))
    huge = tmp_path / "huge.json"  # 1e400 reads as inf
    huge.write_text(json.dumps([changed, variant(node, position_y=0.5)]).replace("0.5", "1e400"))
    files.append((huge, "huge.json, record 2: workflows.Node " + node["pk"] + ": field position_y"))
    whole = json.dumps([changed, *data[:20]])
    truncated = tmp_path / "truncated.json"
    truncated.write_text(whole[: len(whole) // 2])
    files.append((truncated, "truncated.json, record "))
    lines = tmp_path / "broken.jsonl"
    lines.write_text(json.dumps(changed) + "\n" + '{"model": "tools.Tool", "pk": \n')
    files.append((lines, "broken.jsonl, line 2: malformed JSON"))
    packed = tmp_path / "cut.jsonl.gz"
    blob = gzip.compress("".join(json.dumps(r) + "\n" for r in [changed, *data]).encode())
    packed.write_bytes(blob[: len(blob) // 2])
    files.append((packed, "cut.jsonl.gz: truncated"))
    junk = tmp_path / "junk.json.gz"
    junk.write_bytes(b"not gzip at all")
    files.append((junk, "junk.json.gz: not a valid gzip file"))
    array = tmp_path / "object.json"
    array.write_text('{"model": "tools.Tool"}')
    files.append((array, "object.json: malformed JSON: expected a list of records"))
    trailing = tmp_path / "trailing.json"
    trailing.write_text(json.dumps([changed]) + " ]")
    files.append((trailing, "trailing.json: malformed JSON: text after the list"))
    return files


def test_each_bad_input_is_one_line_naming_the_file_and_record_and_writes_nothing(
    source: DatabaseURL, target: DatabaseURL, tmp_path: Path
) -> None:
    good = tmp_path / "good.json"
    ok(manage(source, "dumpdata", "tools", "agents", "workflows", "-o", str(good)))
    ok(manage(target, "loaddata", str(good)))
    before = ok(manage(target, "dumpdata"))
    for path, fragment in _bad_inputs(records(good), tmp_path):
        line = error_line(manage(target, "loaddata", str(good), str(path)))
        assert line.startswith(f"Error: {path}"), line
        assert fragment in line, line
        assert ok(manage(target, "dumpdata")) == before, path.name


def test_unknown_names_and_formats(source: DatabaseURL, tmp_path: Path) -> None:
    line = error_line(manage(source, "dumpdata", "tool", "-o", str(tmp_path / "x.json")))
    assert line == "Error: unknown app 'tool'; did you mean 'tools'?"
    assert not (tmp_path / "x.json").exists()
    line = error_line(manage(source, "dumpdata", "tools.Tol"))
    assert line == "Error: unknown model 'tools.Tol'; did you mean 'tools.Tool'?"
    other = tmp_path / "data.yaml"
    other.write_text("[]")
    assert "unknown fixture format" in error_line(manage(source, "loaddata", str(other)))
    missing = tmp_path / "missing.json"
    assert error_line(manage(source, "loaddata", str(missing))) == (
        f"Error: {missing}: cannot read: No such file or directory"
    )


async def test_large_json_arrays_are_read_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fixtures, "CHUNK", 7)  # every record spans several chunks
    path = tmp_path / "many.json"
    items = [{"model": "tools.Tool", "pk": str(i), "fields": {"name": "é" * i}} for i in range(50)]
    path.write_text(json.dumps(items, indent=1))
    assert [r for _, r in fixtures.iter_records(path)] == items
    empty = tmp_path / "empty.json"
    empty.write_text(" [ ] \n")
    assert list(fixtures.iter_records(empty)) == []


def test_dumpdata_output_names_and_places(source: DatabaseURL, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "x.json"
    line = error_line(manage(source, "dumpdata", "tools", "-o", str(missing)))
    assert line == f"Error: cannot write {missing}: No such file or directory"
    yaml = tmp_path / "x.yaml"
    line = error_line(manage(source, "dumpdata", "tools", "-o", str(yaml)))
    assert line == (
        f"Error: cannot write {yaml}: unknown fixture format; "
        "use .json, .jsonl, .json.gz or .jsonl.gz"
    )
    assert not yaml.exists()
    dash = manage(source, "dumpdata", "tools", "-o", "-")
    assert records_from(dash) == records_from(manage(source, "dumpdata", "tools"))
    assert not (ROOT / "-").exists()
    assert "Dumped" not in dash.stderr


def test_a_failed_dump_leaves_the_file_and_stdout_alone(
    scratch_db: DatabaseURL, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.json"
    backup.write_text('[{"precious": true}]\n')
    migrate = "Error: the database is not migrated; run `manage.py migrate` first"
    result = manage(scratch_db, "dumpdata", "-o", str(backup))
    assert error_line(result) == migrate
    assert backup.read_text() == '[{"precious": true}]\n'
    assert [p.name for p in tmp_path.iterdir()] == ["backup.json"]  # no temporary left
    result = manage(scratch_db, "dumpdata")
    assert error_line(result) == migrate
    assert result.stdout == ""
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert error_line(manage(scratch_db, "loaddata", str(empty))) == migrate


async def test_dumpdata_never_writes_nan_or_infinity(source: DatabaseURL, tmp_path: Path) -> None:
    pk = await sql(
        source,
        "UPDATE nodes SET position_x = 'Infinity' WHERE id = "
        "(SELECT id FROM nodes ORDER BY id LIMIT 1) RETURNING id",
    )
    out = tmp_path / "nodes.json"
    out.write_text("[]\n")
    line = error_line(manage(source, "dumpdata", "workflows.Node", "-o", str(out)))
    assert line == (
        f"Error: cannot dump workflows.Node {pk}: field position_x holds inf, "
        "which JSON cannot hold (NaN or Infinity)"
    )
    assert out.read_text() == "[]\n"
