"""WebRTC below the product: every aiortc/aioice private access (`aiortc_internals`, the one
module that may touch them), frame assembly without decoding, the sender clock, keyframe
detection and codec preferences. Used by the server, the Python client and the recorder;
imports nothing of Tiaojie above it."""
