-- Conversations (OpenAI's Conversations API): one row per conversation, one per item.
-- Items are the client format's own JSON; `seq` orders them within their conversation.
-- Times are unix seconds; every write moves `expires_at` (see stores/base.py).
CREATE TABLE conversations (
    tenant      text     NOT NULL,
    id          text     NOT NULL,
    metadata    bytea    NOT NULL,
    created_at  bigint   NOT NULL,
    expires_at  bigint   NOT NULL,
    next_seq    bigint   NOT NULL DEFAULT 0,
    item_count  integer  NOT NULL DEFAULT 0,
    item_bytes  bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id)
);

CREATE INDEX conversations_expires_at ON conversations (expires_at);

CREATE TABLE conversation_items (
    tenant           text    NOT NULL,
    conversation_id  text    NOT NULL,
    seq              bigint  NOT NULL,
    id               text    NOT NULL,
    item_json        bytea   NOT NULL,
    PRIMARY KEY (tenant, conversation_id, seq),
    UNIQUE (tenant, conversation_id, id),
    FOREIGN KEY (tenant, conversation_id) REFERENCES conversations (tenant, id)
        ON DELETE CASCADE
);
