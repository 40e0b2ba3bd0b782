"""Each physical disk's health: S.M.A.R.T. read through ``smartctl --json`` (``smart.py`` parses,
``job.py`` runs it per disk), the block devices and the kernel's counters from sysfs (``sysfs.py``)."""
