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


_SCALARS = frozenset({str, int, bool, type(None)})


def _enc(value: Any) -> Any:
    """Tagged encoding of one value. Dispatches on the exact type first (the snapshot of a
    large router holds ~250,000 values, mostly floats in lists, deques and tuples) and falls
    back to :func:`_enc_reference`'s isinstance chain for subclasses: the same output."""
    tv = type(value)
    if tv is float:
        return value if value - value == 0.0 else {"f": repr(value)}  # inf - inf is nan
    if tv in _SCALARS:
        return value
    if tv is list:
        return _enc_items(value)
    if tv is tuple:
        return {"t": _enc_items(value)}
    if tv is deque:
        return {"q": _enc_items(value), "m": value.maxlen}
    if tv is dict:
        return {"d": [[_enc(k), _enc(v)] for k, v in value.items()]}
    name = tv.__name__
    if _CLASSES.get(name) is tv:
        return {"o": name, "a": {k: _enc(v) for k, v in vars(value).items()}}
    return _enc_reference(value)


def _enc_items(values: Any) -> list[Any]:
    # Finite floats and plain scalars are their own encoding: no call for them.
    return [
        v if (type(v) is float and v - v == 0.0) or type(v) in _SCALARS else _enc(v) for v in values
    ]


def _enc_reference(value: Any) -> Any:
    """The plain recursive walker: the specification :func:`_enc` is tested against."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"f": repr(value)}
    if isinstance(value, list):
        return [_enc_reference(v) for v in value]
    if isinstance(value, tuple):
        return {"t": [_enc_reference(v) for v in value]}
    if isinstance(value, deque):
        return {"q": [_enc_reference(v) for v in value], "m": value.maxlen}
    if isinstance(value, dict):
        return {"d": [[_enc_reference(k), _enc_reference(v)] for k, v in value.items()]}
    name = type(value).__name__
    if _CLASSES.get(name) is type(value):
        return {"o": name, "a": {k: _enc_reference(v) for k, v in vars(value).items()}}
    raise TypeError(f"cannot snapshot a {name}")


def _dec(value: Any) -> Any:
    tv = type(value)
    if tv is list:
        # Only dicts (tags) and lists need decoding; scalars are themselves.
        return [v if type(v) not in _CONTAINERS else _dec(v) for v in value]
    if tv is not dict:
        return value
    if "f" in value:
        return float(value["f"])
    if "t" in value:
        return tuple([v if type(v) not in _CONTAINERS else _dec(v) for v in value["t"]])
    if "q" in value:
        return deque(
            [v if type(v) not in _CONTAINERS else _dec(v) for v in value["q"]], maxlen=value["m"]
        )
    if "d" in value:
        return {_dec(k): _dec(v) for k, v in value["d"]}
    cls = _CLASSES.get(value.get("o", ""))
    if cls is None:
        raise ValueError(f"unknown class in estimator snapshot: {value.get('o')!r}")
    obj = object.__new__(cls)
    for k, v in value["a"].items():
        setattr(obj, k, _dec(v))
    return obj


_CONTAINERS = frozenset({list, dict})


def dump_estimator(estimator: Estimator) -> dict[str, Any]:
    """The complete state of ``estimator`` as JSON-able data (strict JSON: no NaN/Infinity)."""
    return _enc(estimator)  # type: ignore[no-any-return]


def load_estimator(data: dict[str, Any]) -> Estimator:
    """Rebuild an estimator from :func:`dump_estimator` output; ``ValueError`` if malformed."""
    obj = _dec(data)
    if not isinstance(obj, Estimator):
        raise ValueError("not an estimator snapshot")
    return obj
