"""The username rule: PRECIS keys and look-alike skeletons.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 00:00:00+00:00

``username_key`` becomes the PRECIS UsernameCaseMapped form of the name
(it was ``casefold()``; the column grows to 64 characters because case
mapping may lengthen a name), and ``username_skeleton`` (unique) records
what the name looks like, both computed by ``p2sp.common.usernames``.

Existing accounts are kept, whatever they are called. Where two accounts
now compare equal or look alike, the older keeps the name's key and
skeleton; the newer keeps its old key and gets no skeleton, and the
migration logs a warning naming both, for an operator to resolve. Nothing
is deleted or renamed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from p2sp.common.usernames import UsernameError, check_new_username, skeleton

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("p2sp.server.db.migrations")

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
    sa.column("username_skeleton", sa.String),
)


def _new_forms(username: str) -> tuple[str, str]:
    """(key, skeleton) under the new rule; names it refuses keep their old key."""
    try:
        _, key, skel = check_new_username(username)
    except UsernameError as exc:
        log.warning(
            "username %r does not meet the username rule (%s); the account is kept",
            username,
            exc.reason,
        )
        return username.casefold(), skeleton(username)
    return key, skel


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "username_key",
            existing_type=sa.String(length=32),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("username_skeleton", sa.String(length=255), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(users.c.id, users.c.username, users.c.username_key).order_by(users.c.id)
    ).all()
    keys: dict[str, str] = {}
    skeletons: dict[str, str] = {}
    final: list[tuple[int, str, str | None]] = []
    for user_id, username, old_key in rows:
        key, skel = _new_forms(username)
        if key in keys:
            log.warning(
                "username %r (id %d) now compares equal to %r; it keeps its old key %r: "
                "rename or remove one of them",
                username,
                user_id,
                keys[key],
                old_key,
            )
            key = old_key if old_key not in keys else f"#{user_id}"
        if skel in skeletons:
            log.warning(
                "username %r (id %d) looks like %r; look-alike registrations stay refused",
                username,
                user_id,
                skeletons[skel],
            )
            final.append((user_id, key, None))
        else:
            skeletons[skel] = username
            final.append((user_id, key, skel))
        keys[key] = username
    # Two passes, so that no row holds another's new key in between.
    for user_id, _, _ in final:
        conn.execute(users.update().where(users.c.id == user_id).values(username_key=f"#{user_id}"))
    for user_id, key, skel in final:
        conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(username_key=key, username_skeleton=skel)
        )
    op.create_index(op.f("ix_users_username_skeleton"), "users", ["username_skeleton"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_username_skeleton"), table_name="users")
    conn = op.get_bind()
    for user_id, username in conn.execute(sa.select(users.c.id, users.c.username)).all():
        conn.execute(
            users.update().where(users.c.id == user_id).values(username_key=username.casefold())
        )
    with op.batch_alter_table("users") as batch:
        batch.drop_column("username_skeleton")
        batch.alter_column(
            "username_key",
            existing_type=sa.String(length=64),
            type_=sa.String(length=32),
            existing_nullable=False,
        )
