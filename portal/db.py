"""Database helpers shared by the apps' service functions."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=models.Model)


def create_validated(instance: M) -> M:
    """Validate ``instance`` fully, then INSERT it.

    Two requests racing past ``full_clean`` meet at the unique constraint; the loser gets the same
    ValidationError the check would have given, never an IntegrityError (a 500).
    """
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError:
        instance.validate_unique()
        instance.validate_constraints()
        raise
    return instance


class InSubquery(models.Func):
    """``column IN (subquery)``, written so that PostgreSQL can use an index for it under an OR.

    There it is ``column = ANY(ARRAY(subquery))``: the subquery runs once, and its rows become
    index conditions (a BitmapOr of two index scans for ``a OR b``). A plain ``IN (subquery)``
    under an OR is a hashed subplan tested against every row of the table: a visibility filter
    ``kommune IN (...) OR client IN (...)`` read all 30,000 grants for a vendor's list.
    """

    output_field = models.BooleanField()
    conditional = True

    def __init__(self, column: str, queryset: models.QuerySet[Any]) -> None:
        super().__init__(models.F(column), models.Subquery(queryset))

    def _parts(self, compiler: SQLCompiler) -> tuple[str, str, list[Any]]:
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        subquery_sql, subquery_params = compiler.compile(subquery)
        return column_sql, subquery_sql, [*column_params, *subquery_params]

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        column_sql, subquery_sql, params = self._parts(compiler)
        return f"{column_sql} IN {subquery_sql}", params

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        column_sql, subquery_sql, params = self._parts(compiler)
        return f"{column_sql} = ANY(ARRAY{subquery_sql})", params
