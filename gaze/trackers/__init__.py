"""Trackers: the `Tracker` interface, Eye Tribe client, simulator server, mouse tracker
(docs/running-a-session.md#trackers)."""
