"""Trackers: the `Tracker` interface, Eye Tribe client, simulator server, mouse tracker (SPEC §3)."""
