"""Device ports and their adapters: card reader, PIN pad, printer, scanner, cash drawer,
customer display (``ports.py`` names them and their errors; docs/devices.md).

Import the device module you need (``smartpos.devices.printer``); nothing is imported here so
that loading one device's driver stack never costs the others.
"""
