"""Who runs the work and where: the roles (this process alone, a chief, a worker, the launcher of local workers),
child processes and their restarts, leases and heartbeats, the job pool, and the distributed chief/worker service."""
