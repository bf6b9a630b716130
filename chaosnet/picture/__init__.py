"""A picture of every run: fault bands, request latencies, connections, verdicts.

``scenario_picture(result)`` reads a scenario run into a :class:`Picture` (its
data), ``write_html(path, pictures)`` draws pictures into one self-contained
page and ``write_png(path, pictures)`` into one PNG. Drawing needs the
``chaosnet[report]`` extra (Vega-Lite through ``vl-convert-python``).
"""

from chaosnet.picture.model import Picture
from chaosnet.picture.page import write as write_html
from chaosnet.picture.page import write_png
from chaosnet.picture.scenario import scenario_picture

__all__ = ["Picture", "scenario_picture", "write_html", "write_png"]
