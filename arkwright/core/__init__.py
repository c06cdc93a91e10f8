"""The pure scheduler core: fleet state, queues, eligibility, policies, accounting.

Nothing in this package reads files, sleeps, or talks to a database. It takes events
(submit, finish, tick) and returns decisions (start, preempt, reject).
"""
