"""Tiaojie signalling server: rooms, invites, lobby and moderation over socket.io."""

__version__ = "0.1.0"
