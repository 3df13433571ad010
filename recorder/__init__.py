"""Recorder process: joins a room, remuxes streams to fMP4, hash-chains every fragment (coming)."""
