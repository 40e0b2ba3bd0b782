"""Speed tests on the commune's line with speedtest-cli: ``measure`` (one test), ``schedule``
(when), ``job`` (the report builder with its guards)."""
