"""millipost: a reference mail server, a conformance suite and a load simulator, from Python.

    import millipost
    with millipost.Server() as server:            # SMTP and POP3 on ephemeral loopback ports
        server.add_user("alice", "secret")
        population = millipost.Population(seed=1, size=1_000_000)
        server.provision(population)              # bulk fast path

    results = millipost.load(reference=True, users=100_000, duration="30s", seed=7)
    results.ok, results.totals, results.commands      # the load simulator (docs/load.md)
"""
from ._server import Server
from .population import Population, User
from .conform import conform
# The module is loadsim, not load: a submodule named like the function would be shadowed by it.
from .loadsim import LoadError, Results, load

__all__ = ["Server", "Population", "User", "conform", "load", "Results", "LoadError",
           "__version__"]
__version__ = "0.1.0"
