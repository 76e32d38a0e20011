from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def test_session_works(db_session: AsyncSession) -> None:
    assert await db_session.scalar(text("select 1")) == 1


def test_sync() -> None:
    assert True
