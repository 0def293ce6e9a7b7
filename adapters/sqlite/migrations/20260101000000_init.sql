-- fctr-sqlite schema v1: the audit log (hash-chained per tenant) and the usage ledger.
-- Data rule: no column holds a raw identifier. Agents and callers appear only as keyed pseudonyms
-- (`k1:...`) inside the event JSON and in usage.agent; tenants are tenant ids, not people.

-- One row per audit event. `event` is the event as serde_json writes it; the chain hash covers the
-- canonical form recomputed from it, so `id`, `at` and `kind` are query copies only.
CREATE TABLE audit_events (
    tenant    TEXT    NOT NULL,
    seq       INTEGER NOT NULL CHECK (seq >= 0),
    id        TEXT    NOT NULL,
    at        TEXT    NOT NULL,  -- canonical time, YYYY-MM-DDTHH:MM:SS.ffffffZ (sorts as text)
    kind      TEXT    NOT NULL,
    event     TEXT    NOT NULL,  -- JSON
    prev_hash TEXT    NOT NULL,  -- 64 lowercase hex
    hash      TEXT    NOT NULL,  -- 64 lowercase hex
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant, at);
CREATE INDEX audit_events_at ON audit_events (at);

-- Where each tenant's retained chain starts after a purge.
CREATE TABLE audit_anchors (
    tenant    TEXT    NOT NULL PRIMARY KEY,
    seq       INTEGER NOT NULL CHECK (seq >= 0),  -- first retained seq
    prev_hash TEXT    NOT NULL                    -- hash of the last purged event
);

-- Recorded chain heads, so truncating the tail is detectable. `mac` is HMAC-SHA256 (hex) under the
-- optional checkpoint key, NULL when no key is configured.
CREATE TABLE audit_checkpoints (
    tenant TEXT    NOT NULL,
    seq    INTEGER NOT NULL CHECK (seq >= 0),
    hash   TEXT    NOT NULL,
    at     TEXT    NOT NULL,
    mac    TEXT,
    PRIMARY KEY (tenant, seq)
);

-- Pseudonymous usage counts for billing.
CREATE TABLE usage (
    month  TEXT    NOT NULL,  -- YYYY-MM
    tenant TEXT    NOT NULL,
    agent  TEXT    NOT NULL,  -- keyed pseudonym
    kind   TEXT    NOT NULL,
    count  INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (month, tenant, agent, kind)
);
