"""Anonymised insights for decision makers (issue 13).

Layers, each its own module:

- ``records``: the tables. ``insight_events`` is the raw evidence, one row per meaningful
  moment of one person (erased with the person, PDPA); ``insights_rollup`` holds the
  aggregated counts the views read; ``insights_dirty`` lists the days whose rollup must be
  recomputed (new events, an erasure).
- ``capture``: what the bot writes into ``insight_events`` as it answers.
- ``rollup``: recomputes the rollup for the periods that changed.
- ``suppress``: small-count and complementary suppression.
- ``views``: the views (demand, readiness, funnel, unmet demand, notices, trends) built
  from the rollup only, already suppressed; the console page, the exports and the API
  all use them, so they cannot disagree.
"""
