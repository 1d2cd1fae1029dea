"""Loads Gladly conversation_items.jsonl into DuckDB with dlt, merging on id.

The fastest configuration dlt documents that still merges on the primary key: Parquet loader
files (pyarrow), max_table_nesting=0 (nested objects stay JSON, no child tables),
write_disposition="merge". Lines that are not JSON are skipped, as talkhouse quarantines them.

    python dlt_load.py FILE DUCKDB_PATH
"""

import json
import os
import sys
import tempfile

import dlt


def main() -> None:
    path, db = sys.argv[1], sys.argv[2]

    @dlt.resource(
        name="conversation_items",
        primary_key="id",
        write_disposition="merge",
        max_table_nesting=0,
    )
    def items():
        with open(path, "rb") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "id" in record:
                    yield record

    pipeline = dlt.pipeline(
        pipeline_name="gladly_bench",
        destination=dlt.destinations.duckdb(db),
        dataset_name="gladly",
        pipelines_dir=tempfile.mkdtemp(prefix="dlt-bench-"),
    )
    info = pipeline.run(items(), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM conversation_items")[0][0]
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    main()
