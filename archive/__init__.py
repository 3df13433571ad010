"""The archive: what a Recording folder holds and how it is named (`layout`), the Chain
format with its writer and reader (`chain`), the recorder's signing key (`keys`) and the
offline verifier (`verify`). Used by the recorder, the server and signing; imports nothing
of Tiaojie above it."""
