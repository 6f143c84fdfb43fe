"""Turn an EWT estimator (:mod:`routing.engine.ewt`) into JSON-able data and back, exactly.

The router snapshots its per-queue estimators with everything else, so a restored router gives
bit-for-bit the same announcements as one that never stopped. The estimators are plain objects
of a few known classes holding floats, ints, strings, lists, tuples, deques and dicts; this
walks their attributes with a tagged encoding (JSON has no tuple, deque, int-keyed dict, NaN or
infinity). Only the classes listed in ``_CLASSES`` are rebuilt, so a snapshot cannot make us
instantiate anything else.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from routing.engine import ewt
from routing.engine.ewt import Estimator

__all__ = ["dump_estimator", "load_estimator"]

_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        ewt.QueueObserver,
        ewt._SlidingMax,
        ewt._RatioCalibrator,
        ewt._WeightedRls,
        ewt._DecayedLeastSquares,
        ewt._LogNormalService,
        *ewt.ESTIMATORS.values(),
    )
}


def _enc(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"f": repr(value)}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    if isinstance(value, tuple):
        return {"t": [_enc(v) for v in value]}
    if isinstance(value, deque):
        return {"q": [_enc(v) for v in value], "m": value.maxlen}
    if isinstance(value, dict):
        return {"d": [[_enc(k), _enc(v)] for k, v in value.items()]}
    name = type(value).__name__
    if _CLASSES.get(name) is type(value):
        return {"o": name, "a": {k: _enc(v) for k, v in vars(value).items()}}
    raise TypeError(f"cannot snapshot a {name}")


def _dec(value: Any) -> Any:
    if not isinstance(value, dict):
        if isinstance(value, list):
            return [_dec(v) for v in value]
        return value
    if "f" in value:
        return float(value["f"])
    if "t" in value:
        return tuple(_dec(v) for v in value["t"])
    if "q" in value:
        return deque((_dec(v) for v in value["q"]), maxlen=value["m"])
    if "d" in value:
        return {_dec(k): _dec(v) for k, v in value["d"]}
    cls = _CLASSES.get(value.get("o", ""))
    if cls is None:
        raise ValueError(f"unknown class in estimator snapshot: {value.get('o')!r}")
    obj = object.__new__(cls)
    for k, v in value["a"].items():
        setattr(obj, k, _dec(v))
    return obj


def dump_estimator(estimator: Estimator) -> dict[str, Any]:
    """The complete state of ``estimator`` as JSON-able data (strict JSON: no NaN/Infinity)."""
    return _enc(estimator)  # type: ignore[no-any-return]


def load_estimator(data: dict[str, Any]) -> Estimator:
    """Rebuild an estimator from :func:`dump_estimator` output; ``ValueError`` if malformed."""
    obj = _dec(data)
    if not isinstance(obj, Estimator):
        raise ValueError("not an estimator snapshot")
    return obj
