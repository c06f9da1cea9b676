"""Dataset reading, checking and staging."""
