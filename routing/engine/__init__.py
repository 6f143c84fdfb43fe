"""The routing engine's pure core: no Django, no clocks, no I/O beyond what a caller passes in.

* :mod:`routing.engine.calllog` reads and writes "call log v1" CSV files, validating each row.
* :mod:`routing.engine.ewt` holds the estimated-wait-time estimators and the replay driver.
* :mod:`routing.engine.queue_sim` is a seeded discrete-event simulator that writes call logs
  with known truth.

Django models, views and consumers wrap these modules; nothing here may import Django.
"""
