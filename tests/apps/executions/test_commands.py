"""``manage.py workflows``, from the executions app: workflows with their latest run."""

from __future__ import annotations

import pytest

from project.db.url import DatabaseURL
from project.management import call_command


def test_workflows_lists_each_workflow_with_its_graph_and_last_run(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    capsys.readouterr()
    call_command("workflows")
    assert capsys.readouterr().out == "No workflows.\n"
    call_command("seed", "--count", "2000", "--random-seed", "5")
    capsys.readouterr()
    call_command("workflows")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "trigger", "nodes", "edges", "last", "run"]
    assert len(lines) == 3  # two workflows for --count 2000
    for line in lines[1:]:
        name, trigger, nodes, edges, status = line.split()
        assert name.startswith("workflow-")
        assert trigger in {"schedule", "event", "manual"}
        assert (nodes, edges) == ("6", "5")
        assert status in {"pending", "running", "completed", "failed"}


async def test_soft_deleted_workflows_are_listed_only_on_request(db_session: object) -> None:
    from apps.executions.queries import workflow_summaries
    from apps.workflows.factories import WorkflowFactory

    live = await WorkflowFactory.create(name="live", with_graph=True)
    gone = await WorkflowFactory.create(name="gone")
    gone.soft_delete()
    await WorkflowFactory.create(name="other")
    assert live.id is not None
    names = [row.name for row in await workflow_summaries()]
    assert names == ["live", "other"]
    everything = {row.name: row for row in await workflow_summaries(include_deleted=True)}
    assert everything["gone"].deleted
    assert (everything["live"].nodes, everything["live"].edges) == (6, 5)
    assert everything["live"].last_status is None


async def test_an_async_test_warms_the_session_engine(db_session: object) -> None:
    from project import db

    assert db.get_engine() is not None  # made on the test session's loop


def test_a_command_after_it_gets_an_engine_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from project import db

    session_engine = db.get_engine()
    call_command("workflows")  # its own loop: must not touch the session loop's engine
    assert capsys.readouterr().out == "No workflows.\n"
    assert db.get_engine() is session_engine
