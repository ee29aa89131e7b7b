"""{{name}}: an rpcnode plugin.

Build it into the folder `plugins` (served by `rpcnode --plugins plugins`):
rpcnode build . --out plugins    (--watch rebuilds on every change)
"""

from rpcnode import Plugin, host

plugin = Plugin("{{name}}", "0.1.0")


@plugin.method(summary="Greet someone")
def hello(name: str = "world"):
    """Greet `name` ({"name": "Ada"}, ["Ada"] or no params) and count the
    greetings in host state, shared by every instance."""
    count = host.state_increment("greetings")
    return {"greeting": f"Hello, {name}!", "count": count}


Handler = plugin.handler()
