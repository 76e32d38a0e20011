"""Benchmark serving: the project's app against a bare FastAPI + asyncpg endpoint, one run.

    uv run python -m bench.serve

1. Requests per second of ``GET /api/tools/{id}`` under uvicorn (one worker, loopback)
   against a bare FastAPI endpoint that runs the same query on an asyncpg pool, served
   the same way (target: at least 0.5x). A small keep-alive HTTP/1.1 client sends
   ``REQUESTS`` requests over ``CONCURRENCY`` connections to each, after a warm-up, in
   ``ROUNDS`` rounds that alternate between the two servers (both run throughout), so a
   machine shared with other work slows both alike; the ratio is of the medians. Both
   keep up to ``POOL_SIZE`` connections (the project's ``DB_POOL_SIZE``, no overflow),
   and each server's CPU time per request is shown beside its rate.
2. The queries ``GET /api/workflows/{id}`` sends for a 200-node, 400-edge workflow
   (target: at most 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bench.common import bench_database, now, refuse_production
from project import db
from project.conf import BASE_DIR, VARIABLES
from project.db.url import DatabaseURL
from project.testing.standby import free_port

REQUESTS = 3_000
WARMUP = 300
CONCURRENCY = 10
ROUNDS = 3
#: Connections each server keeps: the baseline's asyncpg pool ``max_size``, and the
#: project's ``DB_POOL_SIZE`` with no overflow (an overflow connection is closed when it is
#: returned, so a pool smaller than the concurrency reconnects all the time).
POOL_SIZE = 15
NODES, EDGES = 200, 400
_URL_VARIABLE = "BENCH_SERVE_DATABASE_URL"
_QUERY = (
    "SELECT id, name, tool_type, description, config, is_active, created_at, updated_at "
    "FROM tools WHERE id = $1 AND deleted_at IS NULL"
)


def _bare_app() -> Any:
    """Return the baseline: FastAPI, an asyncpg pool, the same row as JSON."""
    import json

    import asyncpg
    from fastapi import FastAPI, HTTPException

    pool: list[asyncpg.Pool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = DatabaseURL.parse(os.environ[_URL_VARIABLE])
        kwargs = url.connect_kwargs()

        async def init(connection: asyncpg.Connection) -> None:
            await connection.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )

        pool.append(await asyncpg.create_pool(**kwargs, min_size=5, max_size=POOL_SIZE, init=init))
        yield
        await pool[0].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/tools/{tool_id}")
    async def get_tool(tool_id: uuid.UUID) -> dict[str, Any]:
        row = await pool[0].fetchrow(_QUERY, tool_id)
        if row is None:
            raise HTTPException(404)
        return dict(row)

    return app


def __getattr__(name: str) -> Any:
    # ``uvicorn bench.serve:bare_app`` builds the baseline in the server process only.
    if name == "bare_app":
        return _bare_app()
    raise AttributeError(name)


@dataclass
class Server:
    """A uvicorn process serving one app, and how it fared."""

    name: str
    port: int
    pid: int
    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # seconds per request

    def cpu_seconds(self) -> float:
        """Return the CPU time (user and system) the server has used so far."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def serving(name: str, app: str, url: DatabaseURL) -> AsyncIterator[Server]:
    """Run ``app`` under uvicorn (one worker, 127.0.0.1) on the bench database."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(DATABASE_URL=url.render(hide_password=False), ENVIRONMENT="development")
    env.update(DB_POOL_SIZE=str(POOL_SIZE), DB_MAX_OVERFLOW="0")
    env[_URL_VARIABLE] = env["DATABASE_URL"]
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(  # noqa: ASYNC220 - the server runs beside this loop
        [*argv, "--workers", "1", "--no-access-log", "--log-level", "warning"],
        cwd=BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.1)
        yield Server(name, port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _client(port: int, path: str, count: int) -> None:
    """Send ``count`` GETs on one keep-alive connection, reading each whole response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            if status != b"200":
                raise SystemExit(f"Error: GET {path} answered {status.decode()}")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
    finally:
        writer.close()


async def requests_per_second(port: int, path: str) -> float:
    """Return the rate of ``REQUESTS`` GETs over ``CONCURRENCY`` connections, after a warm-up."""
    await asyncio.gather(*(_client(port, path, WARMUP // CONCURRENCY) for _ in range(CONCURRENCY)))
    started = now()
    await asyncio.gather(
        *(_client(port, path, REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY))
    )
    return REQUESTS / (now() - started)


async def measure(server: Server, path: str) -> None:
    """Add one round's rate and CPU time per request (warm-up included) to ``server``."""
    cpu = server.cpu_seconds()
    server.rates.append(await requests_per_second(server.port, path))
    server.cpu.append((server.cpu_seconds() - cpu) / (WARMUP + REQUESTS))


def describe(server: Server) -> str:
    """Return the server's median rate and CPU time per request, and their spread."""
    rates, cpu = server.rates, [seconds * 1e6 for seconds in server.cpu]
    return (
        f"{server.name} {statistics.median(rates):,.0f} req/s "
        f"({min(rates):,.0f}-{max(rates):,.0f}), {statistics.median(cpu):,.0f} us CPU/request"
    )


async def _prepare() -> tuple[uuid.UUID, uuid.UUID]:
    """Create the schema, one tool and one 200-node, 400-edge workflow; return their keys."""
    from apps.tools.models import Tool
    from apps.workflows.models import Edge, Node, Workflow
    from project.apps import apps
    from project.enums import NodeType, ToolType, TriggerType
    from project.models import Base

    apps.load_models()
    async with db.get_engine().begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with db.session_scope() as session:
        tool = Tool(name="rsi", tool_type=ToolType.TECHNICAL_INDICATOR, config={"period": 14})
        workflow = Workflow(name="graph", trigger_type=TriggerType.MANUAL)
        session.add_all([tool, workflow])
        await session.flush()
        nodes = [
            Node(workflow_id=workflow.id, name=f"n{i}", node_type=NodeType.CONDITION)
            for i in range(NODES)
        ]
        session.add_all(nodes)
        await session.flush()
        session.add_all(
            Edge(workflow_id=workflow.id, source_node_id=nodes[i].id, target_node_id=target.id)
            for step in (1, 2)
            for i, target in enumerate(nodes[step:] + nodes[:step])
        )
    return tool.id, workflow.id


async def graph_queries(workflow_id: uuid.UUID) -> tuple[int, int, int]:
    """Return (SELECT statements, nodes, edges) of ``GET /api/workflows/{id}``, in process."""
    import httpx

    from project.asgi import create_app
    from project.testing.sql import recorded_statements

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        # Reads go through the read-only engine (a replica's, or the primary's).
        read_engine = db.get_router().primary
        with (
            recorded_statements(db.get_engine()) as writes,
            recorded_statements(read_engine) as reads,
        ):
            response = await client.get(f"/api/workflows/{workflow_id}")
        statements = writes + reads
    response.raise_for_status()
    body = response.json()
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    return len(selects), len(body["nodes"]), len(body["edges"])


async def main() -> None:
    refuse_production()
    async with bench_database("serve") as url:
        print(f"database: {url}")
        tool_id, workflow_id = await _prepare()
        path = f"/api/tools/{tool_id}"
        async with (
            serving("project.asgi", "project.asgi:app", url) as ours,
            serving("bare FastAPI + asyncpg", "bench.serve:bare_app", url) as bare,
        ):
            for _ in range(ROUNDS):
                for server in (ours, bare):
                    await measure(server, path)
        ratio = statistics.median(ours.rates) / statistics.median(bare.rates)
        rounds = [mine / theirs for mine, theirs in zip(ours.rates, bare.rates, strict=True)]
        print(
            f"GET {path.replace(str(tool_id), '{id}')}, {ROUNDS} x {REQUESTS} requests, "
            f"{CONCURRENCY} connections, pools of {POOL_SIZE}: {describe(ours)}; "
            f"{describe(bare)}; ratio {ratio:.2f} (rounds {min(rounds):.2f}-{max(rounds):.2f}, "
            "target >= 0.5)"
        )
        queries, nodes, edges = await graph_queries(workflow_id)
        print(
            f"GET /api/workflows/{{id}} with {nodes} nodes and {edges} edges: "
            f"{queries} queries (target <= 4)"
        )
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
