-- deal-service: pipeline stages, deals, deal contacts and the stage history.
-- Applied into every tenant schema; unqualified names follow the search path (tenant, public).
-- owner_id / created_by are auth-service user ids, company_id / primary_contact_id /
-- contact_id contact-service ids: plain integers, validated through their clients.

-- Per-tenant stage configuration. Deals reference a stage by its key, so renaming a key
-- (PUT /pipeline/stages/{key}) cascades to the deals.
CREATE TABLE pipeline_stages (
    key         TEXT PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,49}$'),
    name        VARCHAR(100) NOT NULL,
    position    INTEGER NOT NULL,
    probability INTEGER NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind        TEXT NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pipeline_stages_position ON pipeline_stages (position, key);

-- The defaults of API.md: every tenant starts with them.
INSERT INTO pipeline_stages (key, name, position, probability, kind) VALUES
    ('lead',        'Lead',        1,  10, 'open'),
    ('qualified',   'Qualified',   2,  25, 'open'),
    ('proposal',    'Proposal',    3,  50, 'open'),
    ('negotiation', 'Negotiation', 4,  75, 'open'),
    ('closed_won',  'Closed won',  5, 100, 'won'),
    ('closed_lost', 'Closed lost', 6,   0, 'lost');

CREATE TABLE deals (
    id                  SERIAL PRIMARY KEY,
    title               VARCHAR(255) NOT NULL,
    description         TEXT,
    value               NUMERIC(15,2) CHECK (value >= 0),
    currency            VARCHAR(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    stage_key           TEXT NOT NULL REFERENCES pipeline_stages (key) ON UPDATE CASCADE,
    probability         INTEGER NOT NULL CHECK (probability BETWEEN 0 AND 100),
    expected_close_date DATE,
    actual_close_date   DATE,
    owner_id            INTEGER,
    company_id          INTEGER,
    primary_contact_id  INTEGER,
    source              VARCHAR(100),
    close_reason        VARCHAR(255),
    custom_fields       JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by          INTEGER
);
-- Keyset sorts: one index per sort expression (the same expressions as the repository's),
-- filters on referenced ids, and the pipeline board (stage, most recently updated first).
CREATE INDEX deals_created_at ON deals (created_at, id);
CREATE INDEX deals_updated_at ON deals (updated_at, id);
CREATE INDEX deals_value ON deals ((coalesce(value, -1)), id);
CREATE INDEX deals_expected_close ON deals ((coalesce(expected_close_date, 'infinity'::date)), id);
CREATE INDEX deals_title ON deals (title, id);
CREATE INDEX deals_probability ON deals (probability, id);
CREATE INDEX deals_stage_board ON deals (stage_key, updated_at DESC, id DESC);
CREATE INDEX deals_owner ON deals (owner_id, id);
CREATE INDEX deals_company ON deals (company_id, id);
CREATE INDEX deals_primary_contact ON deals (primary_contact_id, id);
CREATE INDEX deals_actual_close ON deals (actual_close_date) WHERE actual_close_date IS NOT NULL;
CREATE INDEX deals_title_trgm ON deals USING gin (lower(title) gin_trgm_ops);

-- Deal-to-contact associations (many-to-many), with the contact's role on the deal.
CREATE TABLE deal_contacts (
    deal_id    INTEGER NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL,
    role       VARCHAR(100) NOT NULL DEFAULT 'other'
               CHECK (role IN ('decision_maker', 'influencer', 'user', 'other')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by INTEGER,
    PRIMARY KEY (deal_id, contact_id)
);
CREATE INDEX deal_contacts_contact ON deal_contacts (contact_id, deal_id);

-- Every stage a deal entered: from (NULL at creation), to, who, when. Stage keys are kept as
-- text: the history says what the stage was called then.
CREATE TABLE deal_stage_history (
    id         BIGSERIAL PRIMARY KEY,
    deal_id    INTEGER NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    from_stage TEXT,
    to_stage   TEXT NOT NULL,
    changed_by INTEGER,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX deal_stage_history_deal ON deal_stage_history (deal_id, id);
