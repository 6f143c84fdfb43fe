"""``manage.py disposition_codes``: a client's own wrap-up codes."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def _run(*args: str) -> list[str]:
    out = StringIO()
    call_command("disposition_codes", *args, stdout=out)
    return [line.split("\t")[0] for line in out.getvalue().splitlines()]


def test_set_replace_and_clear(cast) -> None:  # type: ignore[no-untyped-def]
    assert _run("alpha")[:2] == ["resolved", "follow_up"]
    assert _run("alpha", "--set", "order=Order placed", "info=Information") == ["order", "info"]
    assert _run("alpha", "--set", "info=Information only") == ["info"]
    assert _run("beta")[0] == "resolved"  # another client's list is its own
    assert _run("alpha", "--clear")[0] == "resolved"


@pytest.mark.parametrize(
    "args", [("public",), ("nowhere",), ("alpha", "--set", "Bad Code=x"), ("alpha", "--set", "a")]
)
def test_bad_arguments(cast, args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError):
        _run(*args)
