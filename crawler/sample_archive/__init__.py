"""The offline sample archive: a small, deterministic stand-in for archive.org.

``build`` writes the on-disk layout fixed in DESIGN.md (synthesised speech, transcripts, messy
licenses, planted defects, ground truth); ``server`` serves it with archive.org's API shapes so the
spider, the demo, the tests and the benchmarks never need the network.
"""
