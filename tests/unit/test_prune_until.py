"""``until`` of a prune: what the engine can read, or a 400 before the engine is asked."""

import pytest

from app.domain.prune_filters import parse_until

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", NOW - 86_400), ("1h30m", NOW - 5_400), ("1700000000", 1_700_000_000)],
)
def test_until_is_read_as_the_engine_reads_it(text, seconds):
    assert parse_until(text, NOW) == int(seconds)


def test_a_duration_reaching_back_before_1970_is_refused():
    with pytest.raises(ValueError, match="before 1970"):
        parse_until("99999999h", NOW)


def test_a_prune_until_before_1970_is_a_400_not_an_engine_error(offline_client, headers):
    response = offline_client.post(
        "/v1/images/prune", json={"until": "99999999h"}, headers=headers("delete")
    )
    assert response.status_code == 400
    assert response.get_json()["errors"]["until"]
