"""The WebSocket gateway: browsers and programs in any language use the network.

A WebSocket client connects to the gateway (``[gateway] listen``), presents a
token, and sends calls, publishes and subscriptions as JSON text frames
(subprotocol ``actornet.json``, the default) or CBOR binary frames
(``actornet.cbor``).  Each WebSocket gets its own
:class:`~actornet.client.Client` connected to the dispatcher it runs beside,
so its requests are routed, stamped, checked and cancelled exactly as any
other asker's.

Modules: :mod:`.settings` (the ``[gateway]`` table), :mod:`.operations` (what
a client may send, checked), :mod:`.frames` (the codecs and what the gateway
sends), :mod:`.admission` (tokens and subprotocols, before anything is routed),
:mod:`.connection` (one WebSocket's calls and subscriptions) and
:mod:`.protocol` (autobahn's protocol and factory around them).
"""
