"""Several nodes behind one Redis: the node registry, room placement, calls between nodes.

`registry.py` (every node's heartbeat: its URL, load and draining flag), `placement.py`
(which node hosts a room's media: a lease in Redis), `calls.py` (asking the node that
hosts a room to do something: start its recording), `service.py` (`Cluster`, what the
rest of the server uses), `http.py` (`/api/node`: this node, and draining it).
"""

from tiaojie.server.cluster.service import Cluster

__all__ = ["Cluster"]
