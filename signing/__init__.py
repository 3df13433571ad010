"""The agreement: its model and text templates, the PDF/A-3B writer, the local CA and TSA,
the PAdES signer (each Signer, then the OrganisationSeal) and the offline validator."""
