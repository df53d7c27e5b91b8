"""The collector of the gateway's data-access log, on files written here: each line loaded once,
whatever happens to the file (a line half written, a rotation, a truncation, a new file on an
old inode) or to the collector (stopped between batches, a batch that fails before its commit).
The real gateway's lines are loaded in ``test_data_access_gateway.py``."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest

from provisioning import access_log
from provisioning.access_log import line_format, line_parse, log_collect
from provisioning.models import AccessLogCursor, DataAccessEntry, GatewayTrafficDay

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)
KOMMUNE = "958935420"


def line(n: int, **fields: object) -> bytes:
    """Call number ``n``: its path says which, so a test can tell lost and doubled calls."""
    values: dict[str, object] = {
        "at": T0 + datetime.timedelta(seconds=n),
        "client_id": "tilgang-abc",
        "kommune": KOMMUNE,
        "service": "patient",
        "access": "read",
        "environment": "production",
        "path": f"/{KOMMUNE}/fhir/Patient/{n:04d}",
        "status": 200,
        "refused": False,
    }
    values.update(fields)
    return line_format(**values)  # type: ignore[arg-type]


def append(path: Path, *lines: bytes) -> None:
    with path.open("ab") as out:
        out.writelines(lines)


def loaded() -> list[int]:
    """The call numbers loaded, in the order of their rows."""
    paths = DataAccessEntry.objects.order_by("pk").values_list("path", flat=True)
    return [int(path.rsplit("/", 1)[1]) for path in paths]


def collect(path: Path, **kw: object) -> access_log.Collected:
    return log_collect(path=path, source="test", **kw)  # type: ignore[arg-type]


# -- The format ------------------------------------------------------------------------------

#: A line as HAProxy 2.6 wrote it for a call with a verified token that the grant refused.
HAPROXY_LINE = (
    b'{"v":1,"t":1796161535874,"th":2,"ti":1200,"client_id":"tilgang-a\\"b",'
    b'"kommune":"958935420","service":"patient","access":"write","environment":"test",'
    b'"method":"DELETE","path":"\\/test\\/958935420\\/fhir\\/Patient\\/1","status":403,'
    b'"duration_ms":0,"server":"<NOSRV>"}'
)


def test_a_line_of_the_gateway_becomes_a_row_with_the_time_of_the_request() -> None:
    row = line_parse(HAPROXY_LINE)

    assert row == (
        datetime.datetime(2026, 12, 1, 21, 45, 37, 76000, tzinfo=datetime.UTC),
        'tilgang-a"b',
        KOMMUNE,
        "patient",
        "write",
        "test",
        "DELETE",
        f"/test/{KOMMUNE}/fhir/Patient/1",
        403,
        0,
        True,  # <NOSRV>: the gateway answered itself
    )


def test_a_call_refused_before_the_route_was_read_gets_its_kommune_from_the_path() -> None:
    raw = line(1, client_id="", kommune="", service="", access="", environment="", status=401)
    test_raw = line(2, client_id="", kommune="", environment="", path=f"/test/{KOMMUNE}/fhir/X")

    assert line_parse(raw)[1:6] == ("", KOMMUNE, "", "", "production")  # type: ignore[index]
    assert line_parse(test_raw)[2:6:3] == (KOMMUNE, "test")  # type: ignore[index]
    assert line_parse(line(3, kommune="", path="/nowhere"))[2] == ""  # type: ignore[index]


@pytest.mark.parametrize(
    "raw",
    [
        b"Proxy fhir stopped (cumulated conns: FE: 1, BE: 0).",
        b'{"v":2,"t":1}',
        b'{"v":1,"t":"soon","th":0,"ti":0,"status":200}',
        b'{"v":1,"t":1796161535874,"th":0,"ti":0',  # cut short
        b"",
    ],
    ids=["a notice of HAProxy", "another version", "no time", "cut short", "empty"],
)
def test_what_is_not_a_line_of_the_format_is_no_row(raw: bytes) -> None:
    assert line_parse(raw) is None


def test_the_formatter_writes_what_the_parser_reads() -> None:
    raw = line(7, path='/958935420/fhir/Patient/ø"\\x', method="POST", status=201)

    row = line_parse(raw.rstrip(b"\n"))

    assert row is not None
    assert row[0] == T0 + datetime.timedelta(seconds=7)
    assert row[6:10] == ("POST", '/958935420/fhir/Patient/ø"\\x', 201, 1)


def test_the_gateways_lines_are_read_by_the_pattern_not_as_json() -> None:
    """The pattern is the collector's speed; JSON is only for lines it does not fit."""
    raw = line(1).rstrip(b"\n")

    assert access_log._LINE.fullmatch(raw.decode().replace("\\/", "/")) is not None
    assert line_parse(raw) == access_log._json_row(raw)


def test_a_line_with_its_keys_in_another_order_is_read_all_the_same() -> None:
    raw = line(5, client_id="", kommune="", status=401).rstrip(b"\n")
    reordered = json.dumps(dict(reversed(json.loads(raw).items()))).encode()
    reordered = b'{"v":1,' + reordered[1:].replace(b'"v": 1, ', b"").replace(b', "v": 1', b"")

    assert line_parse(reordered) == line_parse(raw)
    assert line_parse(raw)[2] == KOMMUNE  # type: ignore[index]


def test_escapes_other_than_the_slash_are_decoded() -> None:
    raw = line(6).replace(b"Patient", b"Pati\\u00e9nt\\u00f8")

    assert line_parse(raw.rstrip(b"\n"))[7] == f"/{KOMMUNE}/fhir/Patiéntø/0006"  # type: ignore[index]


# -- Following the file ----------------------------------------------------------------------


def test_every_line_is_loaded_once_however_often_the_collector_runs(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, *(line(n) for n in range(5)))

    first = collect(log)
    again = collect(log)
    append(log, line(5), line(6))
    third = collect(log)

    assert (first.entries, again.entries, third.entries) == (5, 0, 2)
    assert loaded() == list(range(7))
    cursor = AccessLogCursor.objects.get(source="test")
    assert (cursor.offset, cursor.lines) == (log.stat().st_size, 7)


def test_a_line_half_written_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    whole = line(1)
    append(log, line(0), whole[:40])

    assert collect(log).entries == 1
    append(log, whole[40:])
    assert collect(log).entries == 1

    assert loaded() == [0, 1]


def test_batches_are_whole_lines_and_each_commits_its_cursor(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, *(line(n) for n in range(50)))
    size = len(line(0))

    done = collect(log, limit=size * 7 + 5, max_batches=3)

    assert (done.entries, done.batches) == (21, 3)
    assert AccessLogCursor.objects.get(source="test").offset == size * 21
    assert collect(log, limit=size * 7 + 5).entries == 29
    assert loaded() == list(range(50))


def test_a_batch_that_fails_before_its_commit_leaves_no_row_and_the_cursor_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "access.log"
    append(log, *(line(n) for n in range(10)))
    size = len(line(0))
    collect(log, limit=size * 4, max_batches=1)  # 0-3

    def crash(self: AccessLogCursor, *args: object, **kwargs: object) -> None:
        raise RuntimeError("killed between the rows and the cursor")

    with monkeypatch.context() as patched:
        patched.setattr(AccessLogCursor, "save", crash)
        with pytest.raises(RuntimeError):
            collect(log, limit=size * 4)

    assert loaded() == [0, 1, 2, 3]  # the failed batch's rows went with it...
    assert GatewayTrafficDay.objects.get().calls == 4  # ...and its counts
    collect(log)
    assert loaded() == list(range(10))
    assert GatewayTrafficDay.objects.get().calls == 10


def test_lines_that_are_no_entries_are_counted_and_passed_over(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, line(0), b"Proxy fhir stopped (cumulated conns: FE: 1, BE: 0).\n", line(1))

    done = collect(log)

    assert (done.entries, done.skipped) == (2, 1)
    assert AccessLogCursor.objects.get(source="test").skipped == 1


def test_a_line_longer_than_a_batch_is_passed_over_whole(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, line(0), b"x" * 5000 + b"\n", line(1))

    done = collect(log, limit=1000)

    assert loaded() == [0, 1]
    assert done.skipped == 6  # the long line, read in pieces of a batch


def test_a_missing_file_loads_nothing_until_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    assert collect(log).entries == 0
    append(log, line(0))
    assert collect(log).entries == 1


def test_a_rotation_by_renaming_loads_the_rest_of_the_old_file_then_the_new_one(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    append(log, line(0), line(1))
    collect(log)
    append(log, line(2))  # written after the last batch, before the rotation
    log.rename(tmp_path / "access.log.1")
    append(tmp_path / "access.log.1", line(3))  # the gateway still writes to it...

    assert collect(log).entries == 2  # ...until it restarts: no new file yet
    append(log, line(4))  # restarted: the gateway writes to the new file
    assert collect(log).entries == 1

    assert loaded() == [0, 1, 2, 3, 4]


def test_a_rotation_whose_old_file_is_gone_goes_on_with_the_new_file(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, line(0))
    collect(log)
    log.unlink()
    append(log, line(1))

    collect(log)

    assert loaded() == [0, 1]


def test_a_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    append(log, *(line(n) for n in range(4)))
    collect(log)
    os.truncate(log, 0)  # logrotate's copytruncate
    append(log, line(10))

    collect(log)

    assert loaded() == [0, 1, 2, 3, 10]


def test_a_truncated_file_that_grew_past_the_cursor_again_is_told_by_its_start(
    tmp_path: Path,
) -> None:
    """The same inode and more bytes than the cursor's offset: only the first bytes differ."""
    log = tmp_path / "access.log"
    append(log, line(0))
    collect(log)
    os.truncate(log, 0)
    append(log, *(line(n) for n in range(10, 14)))

    collect(log)

    assert loaded() == [0, 10, 11, 12, 13]


def test_each_source_has_its_own_cursor(tmp_path: Path) -> None:
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    append(one, line(0), line(1))
    append(two, line(2))

    log_collect(path=one, source="gateway-1")
    log_collect(path=two, source="gateway-2")
    log_collect(path=one, source="gateway-1")

    assert sorted(loaded()) == [0, 1, 2]
