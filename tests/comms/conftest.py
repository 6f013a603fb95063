from collections.abc import Iterator

import pytest
from comms_support import Clock

from adapters.mail.sink import SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def clock() -> Clock:
    return Clock()
