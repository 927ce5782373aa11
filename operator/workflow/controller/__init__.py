"""The Kubernetes operator: the Work resource, pure builders and planners, thin kopf handlers.

Layering, from the bottom up:

- ``resource``: the Work resource's spec and status models (the CRD is generated from them).
- ``crd``: the CustomResourceDefinition built from those models.
- ``jobs``, ``records``, ``conditions``, ``observing``: pure builders and readers.
- ``planning``: the decision of what to do next for one Work, from what is observed.
- ``tracking``, ``queue`` and ``reconciler``: which Works need a look, and one look
  at a Work carrying out its plan (``reconciler.Look``).
- ``kube``, ``buckets_sync``, ``tokens`` and ``handlers``: the modules that talk to
  the cluster and to buckets.
"""

__all__: list[str] = []  # the modules are the surface; the package re-exports nothing
