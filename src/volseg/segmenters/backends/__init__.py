"""Backends: each turns one kind of trained model into a :class:`~volseg.segmenters.base.Segmenter`
that runs through the shared engine (:mod:`volseg.segmenters.engine`).

A backend module exposes a factory ``load(entry, *, device)`` for catalogue entries (registered by
name in :data:`volseg.segmenters.registry.BACKENDS`) and, where it makes sense, a loader for a
user's own model given as a path. Heavy dependencies are imported only when a backend is used, and
a missing one is a :class:`~volseg.errors.DependencyError` naming the pip extra.
"""
