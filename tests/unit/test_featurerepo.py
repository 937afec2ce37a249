from __future__ import annotations

import pytest

from berth.featurerepo import redis_connection_string


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6390", "127.0.0.1:6390"),
        ("redis://:s3cret@redis.svc:6379/2", "redis.svc:6379,password=s3cret,db=2"),
        ("rediss://cache:6380", "cache:6380,ssl=true"),
        ("redis:6379,db=0", "redis:6379,db=0"),
    ],
)
def test_redis_url_to_feast_connection_string(url: str, expected: str) -> None:
    assert redis_connection_string(url) == expected
