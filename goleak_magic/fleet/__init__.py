"""A fleet: which instances leak (Prometheus' ``go_goroutines``), and at which ``go``
statement (their pprof dumps, ranked across instances).

``instances`` asks Prometheus which instances climb; ``snapshot_fleet`` takes their
goroutine dumps (and a few steady ones') into one ``goroutines`` table with an
``instance`` column; ``fleet_suspects`` ranks creation sites across the instances.
``local_fleet`` starts a small one on this machine (the tutorial's). In the session a
fleet is a ``record.Fleet`` (``Session.fleet``). Requests go only to the Prometheus URL
and the instances it lists; headers (auth) are sent and never stored.
"""

from .instances import instances
from .local import LocalFleet, local_fleet
from .snapshots import FleetSnapshot, snapshot_fleet
from .suspects import fleet_suspects

__all__ = [
    "FleetSnapshot", "LocalFleet", "fleet_suspects", "instances", "local_fleet", "snapshot_fleet",
]  # fmt: skip
