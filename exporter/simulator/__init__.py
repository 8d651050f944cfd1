"""A faithful, seeded simulator of the OpenAI Admin API's organization listings.

`organization` holds the data, `app` serves it over HTTP under `/v1`,
`faults` injects upstream failures, `demo` builds the `--demo` organization,
`cli` runs it on its own.
"""
