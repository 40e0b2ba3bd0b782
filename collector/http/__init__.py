"""The collector's HTTP surface: the FastAPI ``app`` (health, metrics, hosts, lines, areas),
``fleet_routes`` (communes, degraded, unused, alerts, silences), ``auth`` (tokens), the
``status_page`` (a Jinja2 template, through ``templating``) and the Speedtest Mini
``speedtest_endpoint`` (with its ``throttle``). Routes receive narrow objects through ``deps``;
nothing here imports the service that wires them."""
