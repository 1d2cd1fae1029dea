"""DuckDB filling talkhouse's own tables from conversation_items.jsonl by itself, in SQL: an
estimate of the ceiling of any DuckDB load path that keeps talkhouse's warehouse contract
(whoever parses the lines, DuckDB has this much to store, compress and deduplicate).

`bench/duckdb_native.py` keeps the record as JSON plus five columns. talkhouse's
`gladly.conversation_items` has 42 typed columns besides `_raw` (the contract: vendor fields as
columns, the whole record in `_raw`), merged on `id`, and `talkhouse.model_messages` holds every
message again. This script does that much work and no more, all inside DuckDB: one JSON parse a
line (`json_extract_string` with a list of paths), typed columns, one row per `id`, the messages
copied out with SQL. It does less than talkhouse (no sentiment or language, no quarantine, no
cursor, any version of a repeated id rather than the last).

    python duckdb_schema.py FILE DUCKDB_PATH [MEMORY_LIMIT]
"""

import json
import sys

import duckdb

# (column, JSON path) of the text columns, then the timestamps, then the JSON columns.
TEXT = [
    ("id", "$.id"), ("conversation_id", "$.conversationId"), ("customer_id", "$.customerId"),
    ("session_id", "$.sessionId"), ("initiator_id", "$.initiator.id"),
    ("initiator_type", "$.initiator.type"), ("responder_id", "$.responder.id"),
    ("responder_type", "$.responder.type"), ("content_type", "$.content.type"),
    ("message_type", "$.content.messageType"), ("chat_session_id", "$.content.sessionId"),
    ("body", "$.content.content"), ("subject", "$.content.subject"), ("title", "$.content.title"),
    ("from_address", "$.content.from"), ("to_address", "$.content.to"),
    ("status", "$.content.status"), ("activity_type", "$.content.activityType"),
    ("source_name", "$.content.sourceName"), ("link_url", "$.content.link.url"),
    ("page_id", "$.content.pageId"), ("user_id", "$.content.userId"),
    ("recording_status", "$.content.recordingStatus"),
    ("recording_url", "$.content.recordingUrl"),
    ("recording_duration", "$.content.recordingDuration"),
    ("customer_number", "$.content.customerNumber"),
    ("company_number", "$.content.companyNumber"),
]
TIMES = [
    ("timestamp", "$.timestamp"), ("started_at", "$.content.startedAt"),
    ("answered_at", "$.content.answeredAt"), ("completed_at", "$.content.completedAt"),
    ("occurred_at", "$.content.occurredAt"), ("received_at", "$.content.receivedAt"),
]
JSONS = [
    ("cc", "$.content.cc"), ("bcc", "$.content.bcc"),
    ("recording_summary", "$.content.recordingSummary"),
    ("added_topic_ids", "$.content.addedTopicIds"),
    ("removed_topic_ids", "$.content.removedTopicIds"),
    ("attachments", "$.content.attachments"), ("message_data", "$.content.messageData"),
]


def paths(cols):
    return "[" + ", ".join(f"'{p}'" for _, p in cols) + "]"


def main() -> None:
    path, db = sys.argv[1], sys.argv[2]
    con = duckdb.connect(db)
    if len(sys.argv) > 3:
        con.execute(f"SET memory_limit = '{sys.argv[3]}'")
    cols = []
    for i, (name, _) in enumerate(TEXT):
        expr = f"v[{i + 1}]"
        if name == "recording_duration":
            expr = f"TRY_CAST({expr} AS BIGINT)"
        cols.append(f'{expr} AS "{name}"')
    for i, (name, _) in enumerate(TIMES):
        cols.append(f'TRY_CAST(v[{len(TEXT) + i + 1}] AS TIMESTAMPTZ)::TIMESTAMP AS "{name}"')
    cols += [f'j[{i + 1}] AS "{name}"' for i, (name, _) in enumerate(JSONS)]
    cols += ["'job' AS job_id", "NULL::TIMESTAMP AS job_updated_at"]
    con.execute(
        f"""
        CREATE SCHEMA gladly;
        CREATE TABLE gladly.conversation_items AS
        SELECT {", ".join(cols)}, json AS _raw, now()::TIMESTAMP AS _synced_at,
               'load' AS _load_id, NULL::TIMESTAMP AS _deleted_at
        FROM (SELECT json,
                     json_extract_string(json, {paths(TEXT + TIMES)}) AS v,
                     json_extract(json, {paths(JSONS)}) AS j
              FROM read_ndjson_objects(?, ignore_errors = true)
              WHERE json IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY v[1]) = 1
        """,
        [path],
    )
    con.execute(
        """
        CREATE SCHEMA talkhouse;
        CREATE TABLE talkhouse.model_messages AS
        SELECT 'gladly' AS source, id AS message_id, conversation_id,
               coalesce(chat_session_id, session_id) AS session_id,
               initiator_type AS sender_role, initiator_id AS sender_id,
               content_type AS channel, "timestamp" AS sent_at, body,
               NULL::VARCHAR AS language, NULL::DOUBLE AS sentiment,
               now()::TIMESTAMP AS _synced_at, 'load' AS _load_id,
               NULL::TIMESTAMP AS _deleted_at
        FROM gladly.conversation_items
        WHERE conversation_id IS NOT NULL
          AND content_type IN ('CHAT_MESSAGE', 'EMAIL', 'SMS', 'PHONE_CALL', 'VOICEMAIL',
                               'VOICE_AI_MESSAGE', 'FACEBOOK_MESSAGE', 'INSTAGRAM_DIRECT',
                               'TWITTER', 'WHATSAPP')
        """
    )
    rows = con.execute("SELECT count(*) FROM gladly.conversation_items").fetchone()[0]
    msgs = con.execute("SELECT count(*) FROM talkhouse.model_messages").fetchone()[0]
    print(json.dumps({"rows": rows, "messages": msgs}))


if __name__ == "__main__":
    main()
