"""Whether the nodes of a NATS cluster are ready, judged from their monitoring ports.

A node is ready when it has a route to every other running node and its
``/healthz`` says ``ok`` (with JetStream: it knows a meta leader and its streams
are current).  With JetStream, every stream and consumer must also have a leader
that names itself leader: ``/healthz`` keeps saying ``ok`` for seconds after a
stream's leader is killed, while the other nodes still name the dead one and
requests to the stream time out.
"""

import attrs


@attrs.frozen
class NodeReport:
    """What one node's monitoring port said: ``why`` it is not ready (None when it
    is), and the leader it names for each JetStream stream and consumer it holds."""

    why: str | None
    leaders: dict = attrs.field(factory=dict)


async def probe(monitoring, base_url, peers, jetstream):
    """A :class:`NodeReport` of the node at ``base_url`` (``http://host:port``), which
    should have a route to each node named in ``peers``."""
    try:
        routes = await monitoring.get(base_url + "/routez")
        health = await monitoring.get(base_url + "/healthz")
        jsz = await monitoring.get(base_url + "/jsz?streams=true&consumers=true") \
            if jetstream else {}
    except Exception as error:
        return NodeReport(f"{base_url} did not answer: {error!r}")
    routed = {route.get("remote_name") for route in routes.get("routes") or ()}
    missing = sorted(set(peers) - routed)
    if missing:
        return NodeReport(f"no route to {', '.join(missing)}")
    if health.get("status") != "ok":
        return NodeReport(f"/healthz: {health.get('error') or health}")
    return NodeReport(None, leaders(jsz))


def leaders(jsz):
    """``{asset: leader name or None}`` for the clustered streams and consumers in a
    ``/jsz?streams=true&consumers=true`` answer."""
    found = {}
    for account in jsz.get("account_details") or ():
        for stream in account.get("stream_detail") or ():
            where = f"{account.get('name')} > {stream.get('name')}"
            if stream.get("cluster"):
                found[f"stream {where}"] = stream["cluster"].get("leader")
            for consumer in stream.get("consumer_detail") or ():
                if consumer.get("cluster"):
                    found[f"consumer {where} > {consumer.get('name')}"] = \
                        consumer["cluster"].get("leader")
    return found


def leaderless(named):
    """``[(node name, why)]`` for each asset for which a node names no leader, or one
    that is not running or does not name itself; ``named`` maps each running node's
    name to the leaders it names."""
    return [(name, f"{asset} has no leader yet (it names {leader})")
            for name, assets in named.items()
            for asset, leader in assets.items()
            if leader is None or named.get(leader, {}).get(asset) != leader]
