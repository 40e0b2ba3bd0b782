"""Grafana delivery: dashboards as code, provisioning files, lint and the HTTP sync.

``dashboards`` holds what the five dashboards show, ``panels`` the JSON shapes they are built
from, ``provisioning`` the datasource, dashboard provider and alert-rule files, ``build`` writes
and checks the committed files under ``dashboards/``, ``lint`` checks them, ``sync`` pushes them
to a running Grafana through its HTTP API.
"""

DATASOURCE_UID = "commune-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
FOLDER_UID = "commune-monitor"
LANGUAGES = ("vi", "en")
