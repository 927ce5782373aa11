"""The runner: what executes a Work, in a Job's pod or on any machine (``workflow run``).

``execute`` runs a Work's function or command within its timeout and returns
an ``Outcome``; ``lifecycle`` takes a Work through one attempt (status, times,
buckets updates, the termination message). Nothing here needs Kubernetes.
"""

__all__: list[str] = []  # the modules are the surface; the package re-exports nothing
