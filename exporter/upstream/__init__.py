"""The Admin API side: the HTTP client with its retries, the generic lister for both
paging schemes, the shared envelopes, the admin key source and the failure reasons.
Knows nothing of collectors, caches or metrics."""
