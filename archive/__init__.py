"""The archive: what a Recording folder holds and how it is named (`layout`), the Chain
format with its writer, readers and link and signature checks (`chain`), the recorder's
signing key (`keys`), the RFC 3161 token verifier (`timestamp`), the verification report
model shared by the recording and agreement verifiers (`report`: verdict, coded problems,
findings, the JSON shape) and the offline Recording verifier (`verify`). Used by the
recorder, the server and signing; imports nothing of Tiaojie above it."""
