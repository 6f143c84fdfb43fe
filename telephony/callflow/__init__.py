"""Call control: what the switchboard does with each call (pure asyncio, no Django).

``directory`` is the configuration the call flow reads (numbers, tenants' IVR and policies,
queues, agents' seats), ``meter`` turns a call's timeline into segments (shared/design/segments.md),
``session`` drives one call over its outbound socket, ``switchboard`` joins the nodes, the
sessions and the routing engine. The Django side (``telephony.switchboard_db``) loads the
directory from the database and persists what the switchboard produces.
"""
