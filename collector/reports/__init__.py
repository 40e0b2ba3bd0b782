"""The leaders' monthly scorecard, one job per module: ``period`` (office hours, months),
``gather`` (InfluxQL), ``figures`` and ``score`` (pure computation), ``build`` (checks and
assembles), ``tables`` (the words and cells every format shares), ``charts``, ``render_html``,
``render_pdf``, ``render_xlsx``, ``make`` (a month to a file) and ``mail`` (the monthly e-mail)."""
