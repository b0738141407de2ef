"""Summaries: the map-reduce summarizer, its citations, time windows, the channel log and the
cache of summaries already made."""
