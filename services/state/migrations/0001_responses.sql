-- One row per stored response. Messages and usage are serialized protobuf
-- (switchyard.v1.History with only `messages` set, switchyard.v1.Usage); times are unix seconds.
CREATE TABLE responses (
    tenant            text    NOT NULL,
    id                text    NOT NULL,
    model             text    NOT NULL DEFAULT '',
    provider          text    NOT NULL DEFAULT '',
    previous_id       text    NOT NULL DEFAULT '',
    kind              text    NOT NULL DEFAULT '',
    input             bytea   NOT NULL,
    output            bytea   NOT NULL,
    usage             bytea   NOT NULL,
    body_json         bytea   NOT NULL,
    input_items_json  bytea   NOT NULL,
    created_at        bigint  NOT NULL,
    expires_at        bigint  NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- The purge loop deletes the oldest expiries first in batches.
CREATE INDEX responses_expires_at ON responses (expires_at);
