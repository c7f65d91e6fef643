"""Backbones, streams, detectors and the detector registry."""
