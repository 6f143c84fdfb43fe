"""GcPacer (the switchboard's garbage-collection schedule, decision 0011) and hot-path helpers."""

from __future__ import annotations

import asyncio
import gc

from telephony.callflow.gcpacer import GcPacer


def test_pacer_collects_young_then_middle_and_full_and_restores_thresholds() -> None:
    before = gc.get_threshold()

    async def main() -> GcPacer:
        pacer = GcPacer(young_every=0.01, young_threshold=5_000, middle_every=0.05, full_every=0.12)
        pacer.start()
        try:
            assert gc.get_threshold()[0] == 5_000
            assert gc.get_threshold()[1] >= 1_000_000  # no automatic middle/full collections
            await asyncio.sleep(0.3)
        finally:
            pacer.stop()
        return pacer

    try:
        pacer = asyncio.run(main())
    finally:
        gc.unfreeze()
    assert gc.get_threshold() == before
    young, middle, full = (int(pacer.runs[g][0]) for g in (0, 1, 2))
    assert young >= 5
    assert middle >= 1
    assert full >= 1


def test_pacer_frees_a_reference_cycle() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    async def main() -> int:
        pacer = GcPacer(young_every=0.01)
        pacer.start()
        try:
            gone = asyncio.Event()
            import weakref  # noqa: PLC0415

            ref = weakref.ref(Node(), lambda _r: gone.set())
            async with asyncio.timeout(2):
                await gone.wait()
            return 0 if ref() is None else 1
        finally:
            pacer.stop()

    try:
        assert asyncio.run(main()) == 0
    finally:
        gc.unfreeze()


def test_metered_span_to_dict_is_asdict() -> None:
    """MeteredSpan.to_dict is spelled out for speed: it must stay equal to dataclasses.asdict."""
    import dataclasses  # noqa: PLC0415

    from telephony.callflow.meter import MeteredSpan  # noqa: PLC0415

    span = MeteredSpan("leg", "agent", 1, 2, "agent1", "q1", "+1555", "NORMAL_CLEARING")
    assert span.to_dict() == dataclasses.asdict(span)
    assert list(span.to_dict()) == [f.name for f in dataclasses.fields(MeteredSpan)]
    assert MeteredSpan.from_dict(span.to_dict()) == span
