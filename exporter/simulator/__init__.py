"""A faithful, seeded simulator of the OpenAI Admin API's project and API-key listings.

`organization` holds the data, `app` serves it over HTTP under `/v1`,
`faults` injects upstream failures, `cli` runs it on its own.
"""
