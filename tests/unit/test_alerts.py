"""Component alerts: once per incident, after the component stays unhealthy."""

from amazoniax_dagster.records.api.alerts import Incidents


def test_alerts_once_per_incident_after_consecutive_failures() -> None:
    incidents = Incidents(after=2)
    assert incidents.observe({"database": False, "kafka": True}) == ([], [])
    assert incidents.observe({"database": False, "kafka": True}) == (["database"], [])
    assert incidents.observe({"database": False, "kafka": True}) == ([], [])  # same incident
    restored = Incidents.from_cursor(incidents.to_cursor(), after=2)
    assert restored.observe({"database": True, "kafka": True}) == ([], ["database"])
    assert restored.observe({"database": False, "kafka": False}) == ([], [])
    assert restored.observe({"database": False, "kafka": False}) == (["database", "kafka"], [])


def test_a_blip_shorter_than_the_threshold_is_not_an_incident() -> None:
    incidents = Incidents(after=3)
    for _ in range(5):
        assert incidents.observe({"s3": False}) == ([], [])
        assert incidents.observe({"s3": True}) == ([], [])
