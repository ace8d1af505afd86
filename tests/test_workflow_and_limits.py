"""The project status workflow and the tenant limits, enforced by the database (V0010).

Everything here is plain SQL against a real PostgreSQL, as the owner (psql, operator scripts) and
as the app role (``act_as``), because the point of these rules is that no client can skip them.
The race tests hold one transaction open on its own connection and prove that a second writer of
the same tenant really waits for it (``pg_blocking_pids``) before the first commits.

Speed: the tests share one migrated database for the module, and each test creates its own
tenants under fresh slugs (``acme-1``, ``acme-2``, ...). Limits count per tenant, so no test sees
another's rows or uses up another's limit.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors

from migrationpilot_cli.db.connect import act_as
from tests.conftest import Server, with_database

Conn = psycopg.Connection[Any]
SHA = "0" * 64
WORKFLOW = [
    "draft", "analyzing", "analysis_complete", "designing", "design_complete", "generating",
    "generation_complete", "validating", "validation_complete", "completed",
]  # fmt: skip
_NUMBERS = itertools.count(1)

# Made by the organization's lead, who is then on the project's team (V0015).
INSERT_PROJECT = (
    "INSERT INTO projects (name, organization_id, source_language, target_language, created_by)"
    " VALUES (%s, %s, 'cobol', 'java', (SELECT id FROM users WHERE email = %s)) RETURNING id"
)
INSERT_FILES = (
    "INSERT INTO source_files (organization_id, project_id, path, content, language, size_bytes,"
    " sha256, line_count)"
    " SELECT %(org)s, %(project)s, %(prefix)s || n || '.cbl', '', 'cobol', 0, %(sha)s, %(lines)s"
    " FROM generate_series(1, %(count)s) AS n"
)


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_url(server: Server, template_database: str) -> Iterator[str]:
    """One migrated database shared by this module's tests (each makes its own tenants)."""
    name = server.create_database(template=template_database)
    try:
        yield with_database(server.url, name)
    finally:
        server.drop_database(name)


@pytest.fixture
def db(db_url: str) -> Iterator[Conn]:
    """The owner's autocommit connection (operator mode, as psql would be)."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    email: str
    """A user of this organization, for ``act_as``."""


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    slug: str
    orgs: list[Org]


def scalar(conn: Conn, query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def make_tenant(
    conn: Conn, name: str, *, orgs: int = 1, max_projects: int = 5, max_lines: int = 100_000
) -> Tenant:
    """A tenant ``name-N`` with ``orgs`` organizations and a user in each."""
    slug = f"{name}-{next(_NUMBERS)}"
    tenant_id = scalar(
        conn,
        "INSERT INTO tenants (name, slug, max_projects, max_lines_of_code)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (slug, slug, max_projects, max_lines),
    )
    members = []
    for n in range(1, orgs + 1):
        org_slug = f"{slug}-org{n}"
        org_id = scalar(
            conn,
            "INSERT INTO organizations (tenant_id, name, slug) VALUES (%s, %s, %s) RETURNING id",
            (tenant_id, org_slug, org_slug),
        )
        # An architect: may create projects, import sources and move projects along.
        email = f"lead@{org_slug}.test"
        conn.execute(
            "INSERT INTO users (email, name, organization_id, role)"
            " VALUES (%s, 'Lead', %s, 'architect')",
            (email, org_id),
        )
        members.append(Org(org_id, email))
    return Tenant(tenant_id, slug, members)


def make_project(conn: Conn, org: Org, name: str = "payroll") -> uuid.UUID:
    project_id = scalar(conn, INSERT_PROJECT, (name, org.id, org.email))
    assert isinstance(project_id, uuid.UUID)
    return project_id


def add_files(
    conn: Conn, org: Org, project: uuid.UUID, *, count: int, lines: int, prefix: str = "f"
) -> None:
    """One INSERT ... SELECT of ``count`` files of ``lines`` lines each: f1.cbl, f2.cbl, ..."""
    params = {"org": org.id, "project": project, "prefix": prefix, "sha": SHA}
    conn.execute(INSERT_FILES, {**params, "lines": lines, "count": count})


def move(conn: Conn, project: uuid.UUID, status: str) -> None:
    conn.execute("UPDATE projects SET status = %s WHERE id = %s", (status, project))


def walk_to(conn: Conn, project: uuid.UUID, target: str) -> None:
    for status in WORKFLOW[1 : WORKFLOW.index(target) + 1]:
        move(conn, project, status)


def state(conn: Conn, project: uuid.UUID) -> tuple[str, str | None]:
    """(status, failed_from) of the project."""
    row = conn.execute("SELECT status, failed_from FROM projects WHERE id = %s", (project,))
    result = row.fetchone()
    assert result is not None
    return result[0], result[1]


def allowed(conn: Conn, status: str, failed_from: str | None = None) -> list[str]:
    query = "SELECT project_allowed_transitions(%s, %s)::text[]"
    return list(scalar(conn, query, (status, failed_from)))


def project_names(conn: Conn, tenant: Tenant) -> list[str]:
    query = (
        "SELECT p.name FROM projects p JOIN organizations o ON o.id = p.organization_id"
        # Creation order: each project here is created by its own statement (created_at), and
        # names are unique in an organization.
        " WHERE o.tenant_id = %s ORDER BY p.created_at, p.name"
    )
    return [name for (name,) in conn.execute(query, (tenant.id,))]


def usage(conn: Conn, tenant: Tenant) -> tuple[int, int]:
    """(files, lines) stored for the tenant, read as the owner."""
    query = (
        "SELECT count(*), coalesce(sum(f.line_count), 0) FROM source_files f"
        " JOIN organizations o ON o.id = f.organization_id WHERE o.tenant_id = %s"
    )
    row = conn.execute(query, (tenant.id,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def refused(
    error: pytest.ExceptionInfo[errors.CheckViolation], constraint: str, message: str
) -> errors.CheckViolation:
    """The error is the named constraint's, with exactly this message."""
    assert (error.value.diag.constraint_name, error.value.diag.message_primary) == (
        constraint,
        message,
    )
    return error.value


def project_limit(tenant: Tenant, limit: int, in_use: int, creating: int) -> str:
    return (
        f"tenant {tenant.slug}: project limit reached"
        f" (max_projects {limit}, {in_use} in use, creating {creating} more)"
    )


def line_limit(tenant: Tenant, limit: int, stored: int, adds: int) -> str:
    return (
        f"tenant {tenant.slug}: source line limit exceeded"
        f" (max_lines_of_code {limit}, {stored} stored, this change adds {adds})"
    )


def race(url: str, write: Callable[[Conn, str], None]) -> psycopg.Error | None:
    """Two writers of one tenant. ``write(conn, "first")`` runs and keeps its transaction open;
    ``write(conn, "second")`` starts in a thread and must block on the tenants row; then the
    first commits. Returns what the second got (None if it committed). Cannot hang: the second
    has a lock_timeout and the thread is joined with a timeout."""
    outcome: dict[str, psycopg.Error | None] = {}
    with (
        psycopg.connect(url, autocommit=True) as watcher,
        psycopg.connect(url) as first,
        psycopg.connect(url, autocommit=True, options="-c lock_timeout=5s") as second,
    ):

        def second_writer() -> None:
            try:
                write(second, "second")
                outcome["error"] = None
            except psycopg.Error as error:
                outcome["error"] = error

        # Blocked by the first, holding the tuple lock of a tenants row while it waits.
        waits_on_the_tenant_row = (
            "SELECT %s = ANY (pg_blocking_pids(%s)) AND EXISTS (SELECT FROM pg_locks"
            " WHERE pid = %s AND locktype = 'tuple' AND relation = 'tenants'::regclass)"
        )
        pids = (first.info.backend_pid, second.info.backend_pid, second.info.backend_pid)
        write(first, "first")  # transaction left open: the tenant row stays locked
        thread = threading.Thread(target=second_writer, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not scalar(watcher, waits_on_the_tenant_row, pids):
            assert thread.is_alive(), f"the second writer did not wait: {outcome}"
            assert time.monotonic() < deadline, "the second writer never waited on the tenant"
            time.sleep(0.005)
        first.commit()
        thread.join(timeout=10)
        assert not thread.is_alive()
    return outcome["error"]


@pytest.fixture
def tenant(db: Conn) -> Tenant:
    return make_tenant(db, "acme")


@pytest.fixture
def project(db: Conn, tenant: Tenant) -> uuid.UUID:
    return make_project(db, tenant.orgs[0])


# ---------------------------------------------------------------------------------------------
# Project status workflow
# ---------------------------------------------------------------------------------------------


def test_a_project_walks_the_workflow_from_draft_to_completed(db: Conn, project: uuid.UUID) -> None:
    assert state(db, project) == ("draft", None)
    for current, following in itertools.pairwise(WORKFLOW):
        assert allowed(db, current) == [following, "failed"]
        move(db, project, following)
        assert state(db, project) == (following, None)
    assert allowed(db, "completed") == ["failed"]


@pytest.mark.parametrize(
    ("start", "target", "choices"),
    [
        ("draft", "completed", "analyzing, failed"),
        ("analyzing", "designing", "analysis_complete, failed"),
        ("completed", "draft", "failed"),
    ],
)
def test_a_skipped_or_backward_step_is_refused_and_names_the_allowed_states(
    db: Conn, project: uuid.UUID, start: str, target: str, choices: str
) -> None:
    walk_to(db, project, start)
    with pytest.raises(errors.CheckViolation) as error:
        move(db, project, target)
    message = f"project {project} cannot move from {start} to {target}"
    detail = refused(error, "project_status_workflow", message).diag.message_detail
    assert detail == f"allowed next states: {choices}"
    assert state(db, project) == (start, None)


def test_any_state_can_fail_and_return_only_to_where_it_failed_from_or_draft(
    db: Conn, project: uuid.UUID
) -> None:
    for status in WORKFLOW:
        walk_to(db, project, status)
        move(db, project, "failed")
        assert state(db, project) == ("failed", status)
        choices = [status] if status == "draft" else [status, "draft"]
        assert allowed(db, "failed", status) == choices

        elsewhere = "analyzing" if status in ("draft", "completed") else "completed"
        with pytest.raises(errors.CheckViolation) as error:
            move(db, project, elsewhere)
        message = f"project {project} cannot move from failed to {elsewhere}"
        detail = refused(error, "project_status_workflow", message).diag.message_detail
        assert detail == f"allowed next states: {', '.join(choices)}"
        assert state(db, project) == ("failed", status)

        move(db, project, status)  # back to where it failed
        assert state(db, project) == (status, None)
        move(db, project, "failed")
        move(db, project, "draft")  # draft is always a way back
        assert state(db, project) == ("draft", None)


def test_failing_again_is_no_change_and_keeps_where_it_failed_from(
    db: Conn, project: uuid.UUID
) -> None:
    walk_to(db, project, "designing")
    move(db, project, "failed")
    move(db, project, "failed")
    assert state(db, project) == ("failed", "designing")


def test_failed_from_cannot_be_set_by_hand(db: Conn, project: uuid.UUID) -> None:
    walk_to(db, project, "analyzing")
    set_failed_from = "UPDATE projects SET failed_from = %s WHERE id = %s"
    with pytest.raises(errors.CheckViolation) as error:
        db.execute(set_failed_from, ("draft", project))
    message = f"project {project}: failed_from is set by the status workflow, not by hand"
    refused(error, "project_status_workflow", message)
    move(db, project, "failed")
    with pytest.raises(errors.CheckViolation):
        db.execute(set_failed_from, ("completed", project))
    assert state(db, project) == ("failed", "analyzing")
    # A whole-row write that repeats what the workflow sets anyway is fine.
    db.execute(
        "UPDATE projects SET status = 'analyzing', failed_from = NULL WHERE id = %s", (project,)
    )
    assert state(db, project) == ("analyzing", None)


def test_a_new_project_must_start_as_draft(db: Conn, tenant: Tenant) -> None:
    with pytest.raises(errors.CheckViolation) as error:
        db.execute(
            "INSERT INTO projects (name, organization_id, source_language, target_language,"
            " status) VALUES ('rushed', %s, 'cobol', 'java', 'completed')",
            (tenant.orgs[0].id,),
        )
    message = "new project 'rushed' must start as draft, not completed"
    assert refused(error, "project_status_workflow", message).diag.message_detail == (
        "allowed initial states: draft"
    )
    assert project_names(db, tenant) == []


def test_the_app_role_is_held_to_the_same_workflow(
    db: Conn, tenant: Tenant, project: uuid.UUID
) -> None:
    with pytest.raises(errors.CheckViolation) as error, db.transaction():
        act_as(db, tenant.orgs[0].email)
        move(db, project, "completed")
    message = f"project {project} cannot move from draft to completed"
    refused(error, "project_status_workflow", message)
    assert state(db, project) == ("draft", None)
    with db.transaction():
        act_as(db, tenant.orgs[0].email)
        assert allowed(db, "draft") == ["analyzing", "failed"]
        move(db, project, "analyzing")
        move(db, project, "failed")
    assert state(db, project) == ("failed", "analyzing")


# ---------------------------------------------------------------------------------------------
# max_projects
# ---------------------------------------------------------------------------------------------


def test_project_limit_refuses_one_more_and_writes_nothing(db: Conn) -> None:
    tenant = make_tenant(db, "acme", max_projects=2)
    make_project(db, tenant.orgs[0], "one")
    make_project(db, tenant.orgs[0], "two")
    with pytest.raises(errors.CheckViolation) as error:
        make_project(db, tenant.orgs[0], "three")
    refused(error, "tenant_max_projects", project_limit(tenant, 2, in_use=2, creating=1))
    assert project_names(db, tenant) == ["one", "two"]


def test_project_limit_names_how_many_a_multi_row_insert_creates(db: Conn) -> None:
    tenant = make_tenant(db, "acme", max_projects=2)
    make_project(db, tenant.orgs[0], "one")
    with pytest.raises(errors.CheckViolation) as error:
        db.execute(
            "INSERT INTO projects (name, organization_id, source_language, target_language)"
            " SELECT 'p' || n, %s, 'cobol', 'java' FROM generate_series(1, 2) AS n",
            (tenant.orgs[0].id,),
        )
    refused(error, "tenant_max_projects", project_limit(tenant, 2, in_use=1, creating=2))
    assert project_names(db, tenant) == ["one"]


def test_project_limit_counts_every_organization_of_the_tenant_and_no_other(db: Conn) -> None:
    acme = make_tenant(db, "acme", orgs=2, max_projects=2)
    globex = make_tenant(db, "globex", max_projects=2)
    make_project(db, acme.orgs[0], "one")
    make_project(db, acme.orgs[1], "two")
    with pytest.raises(errors.CheckViolation) as error:
        make_project(db, acme.orgs[1], "three")
    refused(error, "tenant_max_projects", project_limit(acme, 2, in_use=2, creating=1))
    make_project(db, globex.orgs[0], "one")
    make_project(db, globex.orgs[0], "two")
    assert (project_names(db, acme), project_names(db, globex)) == (["one", "two"], ["one", "two"])


def test_project_limit_through_the_app_role_counts_projects_the_user_cannot_see(
    db: Conn,
) -> None:
    acme = make_tenant(db, "acme", orgs=2, max_projects=2)
    make_project(db, acme.orgs[0], "one")
    make_project(db, acme.orgs[0], "two")
    with pytest.raises(errors.CheckViolation) as error, db.transaction():
        act_as(db, acme.orgs[1].email)
        assert scalar(db, "SELECT count(*) FROM projects") == 0
        assert scalar(db, "SELECT count(*) FROM organizations") == 1
        make_project(db, acme.orgs[1], "mine")
    refused(error, "tenant_max_projects", project_limit(acme, 2, in_use=2, creating=1))
    assert project_names(db, acme) == ["one", "two"]


def test_two_concurrent_inserts_cannot_both_take_the_last_project_slot(
    db: Conn, db_url: str
) -> None:
    acme = make_tenant(db, "acme", orgs=2, max_projects=1)

    def create(writer: Conn, name: str) -> None:
        make_project(writer, acme.orgs[0 if name == "first" else 1], name)

    error = race(db_url, create)
    assert isinstance(error, errors.CheckViolation)
    assert error.diag.message_primary == project_limit(acme, 1, in_use=1, creating=1)
    assert project_names(db, acme) == ["first"]


def test_moving_a_project_into_another_tenant_counts_there(db: Conn) -> None:
    acme = make_tenant(db, "acme", max_projects=1)
    globex = make_tenant(db, "globex", max_projects=1)
    make_project(db, acme.orgs[0], "one")
    # Without a creator, so without a team: a project with rows of its own (members, files,
    # rules) cannot change organization at all (the composite foreign keys).
    empty = scalar(
        db,
        "INSERT INTO projects (name, organization_id, source_language, target_language)"
        " VALUES ('two', %s, 'cobol', 'java') RETURNING id",
        (globex.orgs[0].id,),
    )
    with pytest.raises(errors.CheckViolation) as error:
        db.execute(
            "UPDATE projects SET organization_id = %s WHERE id = %s", (acme.orgs[0].id, empty)
        )
    refused(error, "tenant_max_projects", project_limit(acme, 1, in_use=1, creating=1))
    assert project_names(db, globex) == ["two"]


# ---------------------------------------------------------------------------------------------
# max_lines_of_code
# ---------------------------------------------------------------------------------------------


def test_bulk_import_over_the_line_limit_writes_nothing(db: Conn) -> None:
    acme = make_tenant(db, "acme", max_lines=100_000)
    project = make_project(db, acme.orgs[0])
    add_files(db, acme.orgs[0], project, count=10_000, lines=9)  # 90,000 lines: fits
    with pytest.raises(errors.CheckViolation) as error:
        add_files(db, acme.orgs[0], project, count=2_000, lines=6, prefix="g")  # 12,000 more
    refused(error, "tenant_max_lines_of_code", line_limit(acme, 100_000, 90_000, adds=12_000))
    assert usage(db, acme) == (10_000, 90_000)


def test_update_raising_line_count_over_the_limit_is_refused(db: Conn) -> None:
    acme = make_tenant(db, "acme", max_lines=1_000)
    project = make_project(db, acme.orgs[0])
    add_files(db, acme.orgs[0], project, count=2, lines=400)
    grow = "UPDATE source_files SET line_count = %s WHERE project_id = %s AND path = 'f1.cbl'"
    with pytest.raises(errors.CheckViolation) as error:
        db.execute(grow, (700, project))
    refused(error, "tenant_max_lines_of_code", line_limit(acme, 1_000, 800, adds=300))
    assert usage(db, acme) == (2, 800)
    db.execute(grow, (600, project))  # exactly at the limit is fine
    assert usage(db, acme) == (2, 1_000)


def test_line_limit_counts_every_organization_of_the_tenant_and_no_other(db: Conn) -> None:
    acme = make_tenant(db, "acme", orgs=2, max_lines=1_000)
    globex = make_tenant(db, "globex", max_lines=1_000)
    first, second = (make_project(db, org) for org in acme.orgs)
    add_files(db, acme.orgs[0], first, count=1, lines=600)
    with pytest.raises(errors.CheckViolation) as error:
        add_files(db, acme.orgs[1], second, count=1, lines=500)
    refused(error, "tenant_max_lines_of_code", line_limit(acme, 1_000, 600, adds=500))
    add_files(db, globex.orgs[0], make_project(db, globex.orgs[0]), count=1, lines=1_000)
    assert (usage(db, acme), usage(db, globex)) == ((1, 600), (1, 1_000))


def test_line_limit_through_the_app_role_counts_lines_the_user_cannot_see(db: Conn) -> None:
    acme = make_tenant(db, "acme", orgs=2, max_lines=1_000)
    theirs = make_project(db, acme.orgs[0])
    mine = make_project(db, acme.orgs[1])
    add_files(db, acme.orgs[0], theirs, count=3, lines=300)
    with pytest.raises(errors.CheckViolation) as error, db.transaction():
        act_as(db, acme.orgs[1].email)
        assert scalar(db, "SELECT count(*) FROM source_files") == 0
        assert scalar(db, "SELECT count(*) FROM tenants") == 1
        add_files(db, acme.orgs[1], mine, count=2, lines=60)
    refused(error, "tenant_max_lines_of_code", line_limit(acme, 1_000, 900, adds=120))
    with db.transaction():
        act_as(db, acme.orgs[1].email)
        add_files(db, acme.orgs[1], mine, count=1, lines=100)  # the last 100 lines fit
    assert usage(db, acme) == (4, 1_000)


def test_two_concurrent_imports_cannot_both_take_the_last_lines(db: Conn, db_url: str) -> None:
    acme = make_tenant(db, "acme", orgs=2, max_lines=1_000)
    projects = [make_project(db, org) for org in acme.orgs]

    def upload(writer: Conn, name: str) -> None:
        i = 0 if name == "first" else 1
        add_files(writer, acme.orgs[i], projects[i], count=100, lines=6, prefix=name)

    error = race(db_url, upload)
    assert isinstance(error, errors.CheckViolation)
    assert error.diag.message_primary == line_limit(acme, 1_000, 600, adds=600)
    assert usage(db, acme) == (100, 600)


# ---------------------------------------------------------------------------------------------
# Both limits
# ---------------------------------------------------------------------------------------------


def test_lowering_limits_below_use_is_allowed_and_only_blocks_growth(db: Conn) -> None:
    acme = make_tenant(db, "acme")
    project = make_project(db, acme.orgs[0], "one")
    make_project(db, acme.orgs[0], "two")
    add_files(db, acme.orgs[0], project, count=3, lines=100)
    db.execute(
        "UPDATE tenants SET max_projects = 1, max_lines_of_code = 10 WHERE id = %s", (acme.id,)
    )

    with pytest.raises(errors.CheckViolation) as error:
        make_project(db, acme.orgs[0], "three")
    refused(error, "tenant_max_projects", project_limit(acme, 1, in_use=2, creating=1))
    with pytest.raises(errors.CheckViolation) as error:
        add_files(db, acme.orgs[0], project, count=1, lines=1, prefix="more")
    refused(error, "tenant_max_lines_of_code", line_limit(acme, 10, 300, adds=1))

    # Editing, shrinking, empty files and deleting still work.
    move(db, project, "analyzing")
    db.execute(
        "UPDATE source_files SET content = 'x', line_count = line_count - 1 WHERE project_id = %s",
        (project,),
    )
    add_files(db, acme.orgs[0], project, count=1, lines=0, prefix="empty")
    db.execute("DELETE FROM source_files WHERE project_id = %s AND path = 'f1.cbl'", (project,))
    org = acme.orgs[0].id
    db.execute("DELETE FROM projects WHERE organization_id = %s AND name = 'two'", (org,))
    assert (project_names(db, acme), usage(db, acme)) == (["one"], (3, 198))
