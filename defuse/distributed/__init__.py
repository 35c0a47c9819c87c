"""Scale-out backends: identification and the λ sweep on a Ray cluster (issue 14).

``cluster`` connects (a local instance or ``--ray-address``) and describes the cluster;
``identify_ray`` searches source images on Ray Data actors; ``sweep_ray`` trains the λ groups as
Ray tasks. Both only replace the compute loop of :mod:`defuse.identify` / :mod:`defuse.correct`:
the chunk store, the per-λ store and the selection stay on the driver, so results and resumes are
the local backend's.
"""
