"""Agreement PDF, PAdES signatures and the offline verifier (coming)."""
