"""``url_for`` for templates, remembered per app.

Flask's ``url_for`` costs about 10 microseconds a call, and a table draws
several links per row: in a plugin's table of 40 rows building the links
took a quarter of the answer's time (docs/performance.md, change 13). A
link's path depends only on the URL map, which is fixed once the app is
made, the endpoint, the values and the script root; pfcore sets no URL
defaults and uses no subdomains. So each link is built once and then read
from a bounded dictionary. Anything unusual (an external URL, an anchor, a
method or scheme, a value that cannot be a dictionary key) goes straight to
Flask.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request, url_for

# Links kept per app; the dictionary starts again when full (ids in links make
# the set of keys open-ended, the ones in use are built again at once).
MAX_LINKS = 8192


def template_url_for(endpoint: str, **values) -> str:
    if not has_request_context():
        return url_for(endpoint, **values)
    if endpoint.startswith("."):  # relative to the blueprint of this request
        endpoint = f"{request.blueprint}{endpoint}" if request.blueprint else endpoint[1:]
    if any(name.startswith("_") for name in values):
        return url_for(endpoint, **values)
    # The type is part of the key: 1 and True are equal keys but different links.
    key = (request.script_root, endpoint, tuple((name, type(value), value) for name, value in values.items()))
    links = current_app.extensions.setdefault("pfcore.links", {})
    try:
        return links[key]
    except KeyError:
        pass
    except TypeError:  # a value that cannot be a key
        return url_for(endpoint, **values)
    link = url_for(endpoint, **values)
    if len(links) >= MAX_LINKS:
        links.clear()
    links[key] = link
    return link
