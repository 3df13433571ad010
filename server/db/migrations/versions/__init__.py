"""One module per schema revision, applied in order by `tiaojie migrate` and on start."""
