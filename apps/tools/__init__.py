"""Tools: the data fetchers, indicators, screeners and notifiers that workflows call."""
