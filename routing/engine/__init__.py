"""The routing engine's pure core: no Django, no clocks, no I/O beyond what a caller passes in.

* :mod:`routing.engine.calllog` reads and writes "call log v1" CSV files, validating each row.
* :mod:`routing.engine.ewt` holds the estimated-wait-time estimators and the replay driver.
* :mod:`routing.engine.queue_sim` is a seeded discrete-event simulator that writes call logs
  with known truth.
* :mod:`routing.engine.model` holds the router's configuration (tenants, queues, agents),
  events in and decisions out, as frozen dataclasses that convert to and from JSON-able dicts.
* :mod:`routing.engine.router` is the ACD itself: :class:`~routing.engine.router.Engine` takes
  events stamped with their time and returns decisions; snapshot and restore included.
* :mod:`routing.engine.estimator_state` snapshots and restores the EWT estimators exactly.

Django models, views and consumers wrap these modules; nothing here may import Django.
"""
