"""Modality worklist. ``WorklistItem`` arrives with the worklist issue."""
