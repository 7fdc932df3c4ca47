"""Device ports and their adapters (printer, and later card reader, PIN pad, scanner, drawer).

Import the device module you need (``smartpos.devices.printer``); nothing is imported here so
that loading one device's driver stack never costs the others.
"""
