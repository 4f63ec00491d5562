"""The example's table comes from its own Alembic branch."""

from sqlalchemy import inspect

from pfcore.schema import upgrade


def test_upgrading_an_empty_database_creates_the_examples_table(fresh_app):
    upgrade(fresh_app)
    inspector = inspect(fresh_app.extensions["pfcore.engine"])
    columns = {c["name"] for c in inspector.get_columns("example_notes_follow_ups")}
    assert columns == {"id", "practice_id", "user_id", "followed_up_at", "by_id"}
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("example_notes_follow_ups")}
    assert {("practice_id",), ("user_id",)} <= indexed
    with fresh_app.extensions["pfcore.engine"].connect() as connection:
        heads = {row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")}
    assert "example_notes_0001" in heads, "its branch is applied beside the core's"
