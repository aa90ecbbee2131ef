"""The wire: databags, route stamps, envelopes, framing, kinds and status codes.

Nothing in this package does I/O policy; it only knows how bytes become messages
and back, and which inputs to refuse.
"""
