"""Annotation sessions: protocol state machine, session store, labels and speech (SPEC §2)."""
