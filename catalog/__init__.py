"""The registry of units, systems and cameras; site rules; filing and decommission; the published
catalogue; compliance findings (R3–R8, R17, R19). ``catalog.web.setup(gw)`` assembles the part."""
