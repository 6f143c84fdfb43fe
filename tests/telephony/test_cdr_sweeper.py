"""The sweeper: CDR files FreeSWITCH left in its err-log-dir are imported exactly once."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command

CDR_DIR = (
    Path(os.environ.get("CCP_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
    / "fixtures"
    / "freeswitch"
    / "cdr"
)
ERR_A = "36d5098a-1a64-4d66-b8f5-3a900632c61f"
ERR_B = "3b8d12ad-e2d9-4f3f-9f0f-e4d94f080e9f"


def err_file(uuid: str) -> Path:
    return CDR_DIR / "err-log-dir" / f"{uuid}.cdr.json"


def tagged(uuid: str, tenant: str) -> bytes:
    data = json.loads(err_file(uuid).read_bytes())
    data["variables"]["ccp_tenant"] = tenant
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def stored(schema: str) -> list[str]:
    from django_tenants.utils import schema_context

    from cdrs.models import RawCdr

    with schema_context(schema):
        return sorted(str(r.leg_uuid) for r in RawCdr.objects.all())


def sweep(directory: Path, *extra: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(
        "import_cdr_files",
        "--dir",
        str(directory),
        "--min-age",
        "0",
        *extra,
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue()


@pytest.fixture
def node(cast):  # type: ignore[no-untyped-def]
    from telephony import actions

    return actions.do_create_node(
        name="vm", esl_host="10.0.0.22", esl_port=8021, esl_password="pw-1", actor=None
    ).node


def test_sweeper_imports_each_file_once_and_files_it(cast, node, tmp_path):  # type: ignore[no-untyped-def]
    from cdrs.models import RawCdr
    from telephony.models import UnroutedCdr

    (tmp_path / f"{ERR_A}.cdr.json").write_bytes(tagged(ERR_A, "alpha"))
    # encode=true writes the error file URL-encoded, and prefix-a-leg adds "a_".
    (tmp_path / f"a_{ERR_B}.cdr.json").write_bytes(
        quote(tagged(ERR_B, "beta").decode().strip(), safe="").encode() + b"\n"
    )
    shutil.copy(
        CDR_DIR / "a0870693-10c4-4414-82b9-73c33c4cfdae.json",
        tmp_path / "a0870693-10c4-4414-82b9-73c33c4cfdae.cdr.json",
    )  # no ccp_tenant
    (tmp_path / "0d5b6a52-0000-4000-8000-000000000000.cdr.json").write_bytes(
        b'{"core-uuid": "x", "vari'
    )
    (tmp_path / "notes.txt").write_text("not a CDR file; left alone")

    out = sweep(tmp_path)
    assert "1 quarantined" in out and "1 rejected" in out and "2 stored" in out
    assert stored("alpha") == [ERR_A]
    assert stored("beta") == [ERR_B]
    row = None
    from django_tenants.utils import schema_context

    with schema_context("alpha"):
        row = RawCdr.objects.get()
    assert row.source == "file" and row.node_name == "vm"  # matched by switchname "vm"
    assert row.hangup_cause == "USER_BUSY"
    unrouted = UnroutedCdr.objects.get()
    assert str(unrouted.leg_uuid) == "a0870693-10c4-4414-82b9-73c33c4cfdae"
    assert unrouted.reason == "no_tenant" and unrouted.source == "file"

    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(
        [
            f"{ERR_A}.cdr.json",
            f"a_{ERR_B}.cdr.json",
            "a0870693-10c4-4414-82b9-73c33c4cfdae.cdr.json",
        ]
    )
    rejected = tmp_path / "rejected"
    bad = "0d5b6a52-0000-4000-8000-000000000000.cdr.json"
    assert (rejected / bad).exists()
    assert "not valid JSON" in (rejected / f"{bad}.reason.txt").read_text()
    assert (tmp_path / "notes.txt").exists()
    assert not list(tmp_path.glob("*.json"))

    # Run again: nothing left to do. Put a done file back (a re-run after a crash between
    # storing and moving): it is recognised, not stored twice.
    assert "nothing to import" in sweep(tmp_path)
    shutil.copy(tmp_path / "done" / f"{ERR_A}.cdr.json", tmp_path / f"{ERR_A}.cdr.json")
    assert "1 duplicate" in sweep(tmp_path)
    assert stored("alpha") == [ERR_A]
    assert len(list((tmp_path / "done").iterdir())) == 4  # both copies kept, none overwritten


def test_file_name_and_body_must_agree(cast, node, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / f"{ERR_B}.cdr.json").write_bytes(tagged(ERR_A, "alpha"))
    sweep(tmp_path)
    assert stored("alpha") == []
    reason = (tmp_path / "rejected" / f"{ERR_B}.cdr.json.reason.txt").read_text()
    assert "differ" in reason


def test_oversized_file_is_rejected_not_lost(cast, node, tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.CDR_MAX_BYTES = 1000
    (tmp_path / f"{ERR_A}.cdr.json").write_bytes(tagged(ERR_A, "alpha"))
    sweep(tmp_path)
    assert stored("alpha") == []
    assert (
        "larger than 1000 bytes"
        in (tmp_path / "rejected" / f"{ERR_A}.cdr.json.reason.txt").read_text()
    )


def test_files_still_being_written_wait_for_the_next_run(cast, node, tmp_path):  # type: ignore[no-untyped-def]
    from io import StringIO

    path = tmp_path / f"{ERR_A}.cdr.json"
    path.write_bytes(tagged(ERR_A, "alpha"))
    os.utime(path, (time.time(), time.time()))
    out = StringIO()
    call_command("import_cdr_files", "--dir", str(tmp_path), stdout=out)
    assert "too recent" in out.getvalue()
    assert path.exists() and stored("alpha") == []


def test_explicit_node_and_bad_arguments(cast, node, tmp_path):  # type: ignore[no-untyped-def]
    from telephony import actions

    other = actions.do_create_node(
        name="fs-2", esl_host="10.0.0.23", esl_port=8021, esl_password="pw-2", actor=None
    ).node
    (tmp_path / f"{ERR_A}.cdr.json").write_bytes(tagged(ERR_A, "alpha"))
    sweep(tmp_path, "--node", "fs-2")
    from django_tenants.utils import schema_context

    from cdrs.models import RawCdr

    with schema_context("alpha"):
        assert RawCdr.objects.get().node_id == other.pk
    with pytest.raises(CommandError, match="--node"):
        sweep(tmp_path, "--node", "nope")
    with pytest.raises(CommandError, match="--dir"):
        sweep(tmp_path / "missing")
