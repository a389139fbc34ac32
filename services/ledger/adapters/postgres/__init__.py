"""PostgreSQL: the connection pool, migrations, the stores and repositories, usage sums and invoicing."""
