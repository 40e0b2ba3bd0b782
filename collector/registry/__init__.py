"""What the collector knows about the province: the ``registry`` (areas, lines, hosts), its
``csv_import``, the official administrative ``units`` and host ``enroll``ment."""
