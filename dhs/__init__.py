"""Dark Halo Scope application layer: the ``dhs`` command, the ``make demo`` orchestrator and its
stages, the HTML report, and the commands that compose the layers below (``dhs sync``).

It may import every other layer (``dhs_gen``, ``jobs``, ``training``, ``emr``); nothing imports it.
"""
