"""Follow-up studies: align two (or more) studies of one patient and report organ and lesion change
and the RECIST 1.1 response (``volseg compare``). Results are typed in :mod:`volseg.compare.results`."""
