"""A program's set-up: programs, cohorts, session days, sites and targets; and the demo event."""
