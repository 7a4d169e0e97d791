"""A small ERP of its own (customers, sales orders, invoices, payments) that embeds arflow:
its business actions post arflow's events in its own transactions (``services``), it reacts
to arflow's callbacks in its own tables (``reactions``) and it runs arflow's day on a
schedule (``daily``). See ../README.md."""
