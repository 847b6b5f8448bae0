"""``python -m amazoniax_dagster.fetchers.recipe`` rewrites ``recipe.schema.json``."""

from amazoniax_dagster.fetchers.recipe.schema import write_json_schema

write_json_schema()
