"""Losses (CE, SupCon), the trainer and checkpoints."""
