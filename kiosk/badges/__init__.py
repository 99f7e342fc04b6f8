"""Badges: signed codes, issuing and re-issuing, drawing (PNG) and printing (PDF)."""
