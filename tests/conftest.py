"""The shared fixtures live in ``tests/support/fixtures.py`` (in-memory OpenTelemetry
providers, composed; the ``telemetered``, ``unsampled``, ``capture_on`` and ``hub``
fixtures); registered here for every test directory."""

pytest_plugins = ["tests.support.fixtures"]
