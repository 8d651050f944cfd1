"""One collector per upstream resource of the Admin API."""
