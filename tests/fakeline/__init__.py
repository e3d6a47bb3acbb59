"""Fake LINE Messaging API for tests: records every request and checks it against
LINE's OpenAPI spec and documented limits (see ``server.py`` and ``validate.py``).

Typical use::

    with FakeLine() as fake:
        config = Configuration(host=fake.base_url, access_token="test-token")
        ...  # run the bot against it
        assert fake.errors == []
        assert fake.delivered() == [...]
"""

from .server import FakeLine, Recorded

__all__ = ["FakeLine", "Recorded"]
