"""The shared fixtures live in ``tests/support/``, registered here for every test directory:
``fixtures.py`` (in-memory OpenTelemetry providers, composed; the ``telemetered``,
``unsampled``, ``capture_on`` and ``hub`` fixtures) and ``postgres.py`` (a real PostgreSQL
server per session, ``postgres_server``, and an empty database per test, ``postgres_url``)."""

pytest_plugins = ["tests.support.fixtures", "tests.support.postgres"]
