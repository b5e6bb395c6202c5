"""Annotation sessions: protocol state machine, session store, labels and speech
(docs/running-a-session.md#the-protocol)."""
