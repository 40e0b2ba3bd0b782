"""Fleet state: which hosts are offline or degraded, which communes' lines are down, degraded or
unused, derived from every accepted report, and the ``agent``/``commune`` points written for Grafana.

Gather, then judge: ``facts`` (typed readings of each report, folded into per-PC facts),
``rules`` (pure functions over the facts), ``points`` (what Grafana reads), ``persistence``
(facts in the state file) and ``state`` (``FleetState``, the lock that wires them)."""
