"""Local fakes of services that cannot be reached from tests (Bedrock)."""
