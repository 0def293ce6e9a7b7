-- fctr-postgres schema v1: the audit log (hash-chained per tenant) and the usage ledger, shared by every portal
-- replica. Tables are created in the store's schema (the connection's search_path names only that schema).
-- Data rule: no column holds a raw identifier. Agents and callers appear only as keyed pseudonyms (`k1:...`)
-- inside the event text and in usage.agent; tenants are tenant ids, not people.
-- Every text column sorts bytewise (COLLATE "C"), as SQLite's do: exports come out in the same order.

-- One row per audit event. `event` is the event's canonical JSON, byte for byte what `hash` covers (TEXT, not
-- JSONB, which would reorder and re-space it). `id`, `at` and `kind` are query copies only, never trusted.
CREATE TABLE audit_events (
    tenant    TEXT   COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL CHECK (seq >= 0),
    id        TEXT   COLLATE "C" NOT NULL,
    at        TEXT   COLLATE "C" NOT NULL,  -- canonical time, YYYY-MM-DDTHH:MM:SS.ffffffZ (sorts as text)
    kind      TEXT   COLLATE "C" NOT NULL,
    event     TEXT   COLLATE "C" NOT NULL,  -- canonical JSON
    prev_hash TEXT   COLLATE "C" NOT NULL,  -- 64 lowercase hex
    hash      TEXT   COLLATE "C" NOT NULL,  -- 64 lowercase hex
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant, at);
CREATE INDEX audit_events_at ON audit_events (at);

-- Each tenant's chain head: the next seq and the hash it must link to. Appends lock this row (SELECT ... FOR
-- UPDATE) for the length of their transaction, so replicas append to one tenant's chain one batch at a time, and
-- update it in the same transaction as the events, so it is always the head of the committed chain.
CREATE TABLE audit_heads (
    tenant    TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    next_seq  BIGINT NOT NULL CHECK (next_seq >= 0),
    prev_hash TEXT   COLLATE "C" NOT NULL
);

-- Where each tenant's retained chain starts after a purge.
CREATE TABLE audit_anchors (
    tenant    TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    seq       BIGINT NOT NULL CHECK (seq >= 0),  -- first retained seq
    prev_hash TEXT   COLLATE "C" NOT NULL        -- hash of the last purged event
);

-- Recorded chain heads, so truncating the tail is detectable. `mac` is HMAC-SHA256 (hex) under the optional
-- checkpoint key, NULL when no key is configured.
CREATE TABLE audit_checkpoints (
    tenant TEXT   COLLATE "C" NOT NULL,
    seq    BIGINT NOT NULL CHECK (seq >= 0),
    hash   TEXT   COLLATE "C" NOT NULL,
    at     TEXT   COLLATE "C" NOT NULL,
    mac    TEXT   COLLATE "C",
    PRIMARY KEY (tenant, seq)
);

-- Pseudonymous usage counts for billing.
CREATE TABLE usage (
    month  TEXT   COLLATE "C" NOT NULL,  -- YYYY-MM
    tenant TEXT   COLLATE "C" NOT NULL,
    agent  TEXT   COLLATE "C" NOT NULL,  -- keyed pseudonym
    kind   TEXT   COLLATE "C" NOT NULL,
    count  BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (month, tenant, agent, kind)
);
