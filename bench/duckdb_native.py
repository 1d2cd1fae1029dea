"""DuckDB's own NDJSON ingest of conversation_items.jsonl into one table: the record kept as
JSON plus a few extracted columns. The limit a DuckDB destination can approach.

    python duckdb_native.py FILE DUCKDB_PATH
"""

import json
import sys

import duckdb


def main() -> None:
    path, db = sys.argv[1], sys.argv[2]
    con = duckdb.connect(db)
    con.execute(
        """
        CREATE TABLE conversation_items AS
        SELECT json->>'id' AS id,
               json->>'conversationId' AS conversation_id,
               json->>'customerId' AS customer_id,
               TRY_CAST(json->>'timestamp' AS TIMESTAMP) AS "timestamp",
               json->'content'->>'type' AS content_type,
               json AS _raw
        FROM read_ndjson_objects(?, ignore_errors = true)
        WHERE json IS NOT NULL
        """,
        [path],
    )
    rows = con.execute("SELECT count(*) FROM conversation_items").fetchone()[0]
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
