"""Models backend: datasets, synthetic faces, masks, Trainer/Trainee training (SPEC §7–§8)."""
