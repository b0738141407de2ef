from tests.adapters.discord.conftest import fake_discord
from tests.adapters.slack.conftest import fake_slack

__all__ = ["fake_discord", "fake_slack"]
