"""The town's controller: deterministic machinery that runs the town unattended.

No model is ever called from here (DESIGN §2.3).  Modules, each importable on
its own (``gt mq list`` needs only :mod:`.mergeq`):

* :mod:`.daemon`   -- the loop: lock, event following, ticks, threads
* :mod:`.service`  -- ``gt up`` / ``gt down`` / whether a controller runs
* :mod:`.dispatch` -- next step to its agent within a second; pools fed
* :mod:`.patrol`   -- dead, missing and stalled sessions; crash-loop quarantine
* :mod:`.mergeq`   -- the merge queue as beads: order, retry, reject
* :mod:`.refinery` -- rebase, test, fast-forward; conflicts back to their author
* :mod:`.convoy`   -- batches that land when all their beads are done
* :mod:`.policies` -- ``[controller]``, ``[patrol]``, ``[merge]`` in town.toml
"""
