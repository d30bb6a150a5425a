"""Where runs train, behind one small interface: an executor submits a stored run and hands back a RunHandle
that streams its progress, stops it and reports how it ended (base.py).

    thread   in a thread of this process (thread.py: tests, and the command line's --executor thread)
    process  in a worker process of its own, the default: a crash there cannot take the server down
             (process.py, the server's side; process_worker.py, the worker's)
    ray      as a Ray task, on a local instance or the cluster at RAY_ADDRESS (ray_tasks.py)

MNIST_LAB_EXECUTOR chooses one (choice.py); the manager queues runs and hands each to its executor when a
slot frees. This package's modules are imported by name: the worker runs process_worker.py as its main
program, so nothing here imports it.
"""
