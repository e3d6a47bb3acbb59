"""The database: models, migrations and the queries handlers share."""
