"""Where a message goes in: MQTT ``consumer``, message ``checks`` (decode, validate, enrich),
``lineprotocol`` encoding, the batch ``writer`` with its ``diskbuffer``, the one InfluxDB client
(``influx``) and ``setup_influx`` (database, retention, rollups)."""
