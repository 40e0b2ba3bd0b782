"""What the agent and the collector share: the wire contract (``wire``) and the log format (``logfmt``).

Both programs import this package; it depends on nothing outside the standard library, so an
agent install stays free of server packages.
"""
