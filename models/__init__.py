"""Models backend: datasets, synthetic faces, masks, Trainer/Trainee training (docs/masks-and-training.md)."""
