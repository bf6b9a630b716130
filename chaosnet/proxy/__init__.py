"""chaosnet's embedded fault-injecting proxy, with a Toxiproxy-v2-compatible control API.

- ``embedded.EmbeddedServer``: the server on a background thread of this process;
- ``serve.main``: ``chaosnet serve`` in the foreground;
- ``engine``/``proxy``/``link``/``direction``/``listener``: the data plane;
- ``toxics``: one toxic per module, and the registry;
- ``api``/``bodies``: the HTTP API and its request validation;
- ``connlog``: the per-proxy connection log (extension).

Internal: apart from ``EmbeddedServer`` (exported as ``chaosnet.EmbeddedServer``),
these modules carry no stability promise. Drive the proxy through the control API
(``chaosnet.Chaos``, ``chaosnet.ControlClient``) or ``chaosnet serve``.

See docs/proxy.md for usage, the toxic table and the differences from Toxiproxy.
"""
