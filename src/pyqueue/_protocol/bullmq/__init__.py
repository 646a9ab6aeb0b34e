"""BullMQ 6's wire format: key names, job hash fields, script arguments, Lua commands."""
