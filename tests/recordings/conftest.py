"""Recordings on the test cast's clients: a call policy for alpha, a store in a temp folder."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

T0_MS = 1_795_000_000_000  # 2026-11-18


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of ``seconds`` with a recognisable (non-silent) ramp."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = int(seconds * rate)
        w.writeframes(b"".join(int(i % 2000).to_bytes(2, "little") for i in range(frames)))
    return buf.getvalue()


@pytest.fixture
def store(settings, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "store"
    settings.RECORDINGS_ROOT = root
    return root


@pytest.fixture
def node_dir(tmp_path) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "node"
    path.mkdir()
    return path


@pytest.fixture
def policy(cast):  # type: ignore[no-untyped-def]
    """Alpha records every call, keeps recordings 30 days; client admins and supervisors play."""
    from telephony.models import CallPolicy

    return CallPolicy.objects.create(
        tenant=cast.a,
        recording=CallPolicy.Recording.ALL,
        recording_retention_days=30,
        recording_roles=["client_admin", "supervisor"],
    )


def switch_path(schema: str, call_id: str) -> str:
    return f"/var/lib/freeswitch/recordings/{schema}/2026/11/18/{call_id}.wav"


@pytest.fixture
def stored_recording(cast, policy, store, node_dir):  # type: ignore[no-untyped-def]
    """A finished, stored recording of alpha's call c-1 (2 s of audio)."""
    from django_tenants.utils import schema_context

    from calls.models import Call
    from recordings.actions import do_import_recordings, do_register_recording

    path = switch_path("alpha", "c-1")
    recording = do_register_recording(
        "alpha",
        {"tenant_id": "alpha", "call_id": "c-1", "path": path, "started_ms": T0_MS},
    )
    with schema_context("alpha"):
        Call.objects.create(
            call_id="c-1",
            a_leg_uuid="00000000-0000-4000-8000-000000000001",
            origin="direct",
            started_ms=T0_MS,
            ended_ms=T0_MS + 2500,
        )
    target = node_dir / "alpha/2026/11/18/c-1.wav"
    target.parent.mkdir(parents=True)
    target.write_bytes(wav_bytes(2.0))
    report = do_import_recordings(cast.a, node_dir, settle_s=0)
    assert report.stored == 1, report
    with schema_context("alpha"):
        recording.refresh_from_db()
    return recording


@pytest.fixture
def switch(settings):  # type: ignore[no-untyped-def]
    """The switchboard behind the recording API, faked on the channel layer (see fakes.py)."""
    from tests.recordings.fakes import FakeSwitchboardLayer

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "tests.recordings.fakes.FakeSwitchboardLayer"}
    }
    FakeSwitchboardLayer.mode = "ok"
    FakeSwitchboardLayer.message = ""
    FakeSwitchboardLayer.received = []
    yield FakeSwitchboardLayer
    FakeSwitchboardLayer.received = []
    FakeSwitchboardLayer.message = ""
