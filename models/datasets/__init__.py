"""Dataset loaders for the real layouts of CK+, FER+, AffectNet and folder-per-class (SPEC §8)."""
