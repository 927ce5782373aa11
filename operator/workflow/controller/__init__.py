"""The Kubernetes operator: the Work resource, pure builders and planners, thin kopf handlers.

Layering, from the bottom up:

- ``resource``: the Work resource's spec and status models (the CRD is generated from them).
- ``crd``: the CustomResourceDefinition built from those models.
- ``jobs``, ``documents``, ``conditions``, ``observing``: pure builders and readers.
- ``planning``: the decision of what to do next for one Work, from what is observed.
- ``kube`` and ``handlers``: the only modules that talk to the cluster.
"""

__all__: list[str] = []  # the modules are the surface; the package re-exports nothing
