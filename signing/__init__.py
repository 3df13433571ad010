"""The agreement: its model and text templates (`model`, `templates`), the PDF/A-3B writer
(`pdf`), the local CA (`authority`) and TSA (`tsa`), the PAdES signer (`signer`: the
Notary signs for each Signer, then applies the OrganisationSeal) and the offline
validator (`validator`) with its report (`agreement_report`, in the shape
tiaojie.archive.report gives every verifier)."""
