"""A NATS cluster of ``nats-server`` processes for the federation group.

The bench's orchestrator is not a Twisted program, so it cannot use the test
kit's :class:`~actornet.testing.nats.NatsCluster`; this starts the same
cluster (routes between every pair of nodes, JetStream on, loopback only)
as children of a :class:`procs.Cluster`, and waits by polling each node's
monitoring port until every node has its routes, says it is healthy, and
agrees on a JetStream meta leader: before that, the first dispatcher could
not make its key-value bucket of names and would run without one.
"""

import json
import time
import urllib.error
import urllib.request

from procs import HOST, ChildFailed

from actornet.testing.nats import free_ports


def start_nats(cluster, binary, directory, size=3, timeout=30.0):
    """``size`` nodes ``nats-1`` ... as children of ``cluster``, ready; each child's
    ``info`` has its client ``url`` and ``monitor`` URL.

    @raise ChildFailed: a node ended, or the cluster was not ready in ``timeout`` s.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ports = free_ports(HOST, 3 * size)
    clients, routes, monitors = ports[:size], ports[size:2 * size], ports[2 * size:]
    nodes = []
    for index in range(size):
        conf = directory / f"n{index + 1}.conf"
        conf.write_text(_config(index, clients, routes, monitors, directory))
        node = cluster.start(f"nats-{index + 1}", [binary, "-c", conf], ready=False)
        node.info = {"url": f"nats://{HOST}:{clients[index]}",
                     "monitor": f"http://{HOST}:{monitors[index]}"}
        nodes.append(node)
    deadline = time.monotonic() + timeout
    while (why := _not_ready(nodes)) is not None:
        if time.monotonic() > deadline:
            raise ChildFailed(f"the NATS cluster was not ready in {timeout:g} s: {why}")
        time.sleep(0.1)
    return nodes


def _config(index, clients, routes, monitors, directory):
    lines = [f"server_name: n{index + 1}", f"listen: {HOST}:{clients[index]}",
             f"http: {HOST}:{monitors[index]}",
             f"jetstream {{ store_dir: {json.dumps(str(directory / f'n{index + 1}'))}, "
             "max_mem_store: 64MB, max_file_store: 256MB }"]
    if len(clients) > 1:
        others = ", ".join(json.dumps(f"nats-route://{HOST}:{port}")
                           for i, port in enumerate(routes) if i != index)
        lines += ["cluster {", "  name: bench", f"  listen: {HOST}:{routes[index]}",
                  f"  routes: [{others}]", "}"]
    return "\n".join(lines) + "\n"


def _not_ready(nodes):
    """Why the cluster is not ready yet, or None when it is."""
    leaders = set()
    for node in nodes:
        if node.popen.poll() is not None:
            raise ChildFailed(f"{node.name} exited with {node.popen.returncode}"
                              f"{node.log_tail()}")
        try:
            if _get(node, "/healthz").get("status") != "ok":
                return f"{node.name} is not healthy yet"
            if _get(node, "/routez").get("num_routes", 0) < len(nodes) - 1:
                return f"{node.name} lacks routes"
            leaders.add(_get(node, "/jsz").get("meta_cluster", {}).get("leader"))
        except (OSError, ValueError) as e:
            return f"{node.name}: {e}"
    if len(nodes) > 1 and (len(leaders) != 1 or None in leaders or "" in leaders):
        return f"no agreed JetStream meta leader ({sorted(map(str, leaders))})"
    return None


def _get(node, path):
    try:
        with urllib.request.urlopen(node.info["monitor"] + path, timeout=2) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as e:
        return json.load(e)
