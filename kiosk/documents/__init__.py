"""PDFs a coordinator prints: signature sheets, certificates, allowance sheets, and the papers both servers make from a report Dataset (one page set-up in layout.py)."""
