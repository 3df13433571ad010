"""Cases: from a resident's report to a closed case, one case one code (docs/CASES.md).

Kept light on purpose: server/db/schema.py imports `tables` from here. What the package
holds: `actor` (who acts: the seam staff accounts plug into), `permissions` (every role
and organisation check), `states` (states, actions, the transition rules), `model` (a
Case, its parties and attachments), `taxonomy` and `regions` (the configurable lists),
`numbering` (case numbers), `tables` (SQL), `store` (reads and writes, the log in the
same transaction), `attachments` (content checks, private storage), `intake` (public
reports, flood limits), `progress` (the public progress JSON, page and QR), `experts` (the
pool), `dossier` (the ZIP), `service` (the Cases the application builds) and `http` (routes).
"""
