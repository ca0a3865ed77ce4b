"""A fleet: which instances leak (Prometheus' ``go_goroutines``), and at which ``go``
statement (their pprof dumps, ranked across instances).

``instances`` asks Prometheus which instances climb; ``snapshot_fleet`` takes their
goroutine dumps (and a few steady ones') into one ``goroutines`` table with an
``instance`` column; ``fleet_suspects`` ranks creation sites across the instances.
Requests go only to the Prometheus URL and the instances it lists; headers (auth) are
sent and never stored.
"""

from .instances import instances
from .snapshots import FleetSnapshot, snapshot_fleet
from .suspects import fleet_suspects

__all__ = ["FleetSnapshot", "fleet_suspects", "instances", "snapshot_fleet"]
