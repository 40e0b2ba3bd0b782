"""Fleet state: which hosts are offline or degraded, which communes' lines are down, degraded or
unused, derived from every accepted report, and the ``agent``/``commune`` points written for Grafana."""
