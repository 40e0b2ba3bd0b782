"""USB peripherals (scanners, signature tokens, printers): what is plugged into this PC and for how long.

``source`` lists USB devices, ``sysfs`` is the Linux source, ``classify`` decides what a device
is from its classes and the shipped ``known_ids.csv``, ``tracker`` turns polls into the
``peripherals`` report.
"""
