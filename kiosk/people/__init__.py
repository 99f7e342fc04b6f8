"""Participants: validating and registering them, roster files, walk-ins on tablets and the tablets themselves."""
