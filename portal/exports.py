"""Downloads that stream: a CSV is written a record at a time as the response is sent, so its
memory does not grow with the number of records."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"), tab and carriage
#: return included.
FORMULA_START = "=+-@\t\r"


def csv_cell(value: Any) -> str:
    """``value`` as a spreadsheet shows it, never runs it: names come from vendors and kommuner,
    and one that starts like a formula gets a leading ' (None is an empty cell)."""
    text = "" if value is None else str(value)
    return "'" + text if text and text[0] in FORMULA_START else text


class _Echo:
    """A file-like object whose ``write`` hands back what it is given (Django's streaming CSV
    recipe): the writer formats one record, the response sends it."""

    def write(self, value: str) -> str:
        return value


def csv_streaming_response(
    records: Iterable[list[str]], *, filename: str, bom: bool = True
) -> StreamingHttpResponse:
    """A CSV download of ``records`` (the first is the header), UTF-8, streamed record by record;
    with a byte-order mark (``bom``) so spreadsheets read the Norwegian letters."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        if bom:
            yield "\ufeff"
        for record in records:
            yield writer.writerow(record)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
