"""One module per relation interface: typed databags, no status decisions."""
