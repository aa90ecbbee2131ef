"""An actor that says where it runs: the example federation's service on C."""

import os
import socket

from actornet import Actor, handler


class Where(Actor):
    services = ("where",)

    @handler
    def am_i(self, bag):
        return {"actor": self.name, "host": socket.gethostname(), "pid": os.getpid()}
