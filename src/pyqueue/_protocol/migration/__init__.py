"""Moving a queue from Bull 4's format to BullMQ 6's, one job per atomic step.

The migration knows both layouts through each format's keys module
(:mod:`..bull.keys`, :mod:`..bullmq.keys`) and names only its own keys
(:mod:`.keys`). Its Lua commands (``commands/``) take one small batch of jobs,
or one schedule, from the Bull side and write it, converted, on the BullMQ
side, in one script call: a job is on one side or the other, never both,
never neither, whenever the process stops. What a run does is in
:mod:`.runner`; what it would do (the dry run) in :mod:`.inventory`; the
pure conversions in :mod:`.convert`.
"""
