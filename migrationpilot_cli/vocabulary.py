"""The database's enumerations as Python enums, for option choices and validation.

They mirror the enum types in sql/migrations (a test compares them with pg_enum), so a wrong
value is refused by the CLI with exit 2 before any SQL runs."""

from __future__ import annotations

from enum import StrEnum


class Subscription(StrEnum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


class UserRole(StrEnum):
    admin = "admin"
    architect = "architect"
    reviewer = "reviewer"
    developer = "developer"
    viewer = "viewer"


class ProjectRole(StrEnum):
    """A member's role in a project: a user role but admin (admins act on every project)."""

    architect = "architect"
    reviewer = "reviewer"
    developer = "developer"
    viewer = "viewer"


class UserState(StrEnum):
    """Whether an account may act (users.disabled_at, V0016)."""

    active = "active"
    disabled = "disabled"


class ProjectStatus(StrEnum):
    draft = "draft"
    analyzing = "analyzing"
    analysis_complete = "analysis_complete"
    designing = "designing"
    design_complete = "design_complete"
    generating = "generating"
    generation_complete = "generation_complete"
    validating = "validating"
    validation_complete = "validation_complete"
    completed = "completed"
    failed = "failed"


class SourceLanguage(StrEnum):
    cobol = "cobol"
    fortran = "fortran"
    vb6 = "vb6"
    vba = "vba"
    java_legacy = "java-legacy"


class TargetLanguage(StrEnum):
    java = "java"
    python = "python"
    typescript = "typescript"
    go = "go"
    csharp = "csharp"


class RuleCategory(StrEnum):
    calculation = "calculation"
    validation = "validation"
    decision = "decision"
    transformation = "transformation"
    workflow = "workflow"
    constraint = "constraint"


class ReviewStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    needs_clarification = "needs_clarification"


class GeneratedFileType(StrEnum):
    source = "source"
    test = "test"
    config = "config"
    doc = "doc"


# Database enum type -> its Python mirror (checked by tests/test_vocabulary.py).
DATABASE_ENUMS: dict[str, type[StrEnum]] = {
    "user_role": UserRole,
    "project_status": ProjectStatus,
    "source_language": SourceLanguage,
    "target_language": TargetLanguage,
    "rule_category": RuleCategory,
    "review_status": ReviewStatus,
    "generated_file_type": GeneratedFileType,
}
