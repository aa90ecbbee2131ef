"""The live dashboard served at the dispatcher's HTTP port (see :mod:`.site`)."""
