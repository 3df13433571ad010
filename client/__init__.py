"""Python client for Tiaojie: joins by invite link, publishes pre-encoded media, subscribes."""
