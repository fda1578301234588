"""millipost: a reference mail server, a conformance suite and a load simulator, from Python.

    import millipost
    with millipost.Server() as server:            # SMTP and POP3 on ephemeral loopback ports
        server.add_user("alice", "secret")
        population = millipost.Population(seed=1, size=1_000_000)
        server.provision(population)              # bulk fast path
"""
from ._server import Server
from .population import Population, User
from .conform import conform

__all__ = ["Server", "Population", "User", "conform", "__version__"]
__version__ = "0.1.0"
