-- contact-service: companies, contacts, their status history and the fuzzy-search vocabulary.
-- Applied into every tenant schema; unqualified names follow the search path (tenant, public).
-- owner_id / created_by are auth-service user ids: plain integers, validated through its client.

CREATE TABLE companies (
    id                SERIAL PRIMARY KEY,
    name              VARCHAR(255) NOT NULL,
    domain            VARCHAR(253),
    industry          VARCHAR(100),
    size_category     VARCHAR(50),
    parent_company_id INTEGER REFERENCES companies (id) ON DELETE SET NULL,
    street_address    VARCHAR(255),
    city              VARCHAR(100),
    state             VARCHAR(100),
    country           VARCHAR(100),
    postal_code       VARCHAR(20),
    phone             VARCHAR(50),
    website           VARCHAR(255),
    custom_fields     JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    tags              TEXT[] NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by        INTEGER NOT NULL,
    CHECK (parent_company_id IS DISTINCT FROM id)
);
-- One index per filter and per sort (keyset: value, id).
CREATE INDEX companies_name ON companies (name, id);
CREATE INDEX companies_created_at ON companies (created_at, id);
CREATE INDEX companies_updated_at ON companies (updated_at, id);
CREATE INDEX companies_industry ON companies (industry, id);
CREATE INDEX companies_size_category ON companies (size_category, id);
CREATE INDEX companies_parent ON companies (parent_company_id, id);
CREATE INDEX companies_tags ON companies USING gin (tags);
CREATE INDEX companies_name_trgm ON companies USING gin (lower(name) gin_trgm_ops);
CREATE INDEX companies_lower_name ON companies (lower(name));

CREATE TABLE contacts (
    id                SERIAL PRIMARY KEY,
    first_name        VARCHAR(100) NOT NULL,
    last_name         VARCHAR(100) NOT NULL,
    email             VARCHAR(254),
    phone             VARCHAR(50),
    job_title         VARCHAR(100),
    company_id        INTEGER REFERENCES companies (id) ON DELETE SET NULL,
    owner_id          INTEGER,
    status            VARCHAR(50) NOT NULL DEFAULT 'lead'
                      CHECK (status IN ('lead', 'prospect', 'customer', 'churned', 'archived')),
    source            VARCHAR(100),
    street_address    VARCHAR(255),
    city              VARCHAR(100),
    state             VARCHAR(100),
    country           VARCHAR(100),
    postal_code       VARCHAR(20),
    custom_fields     JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    notes             TEXT,
    tags              TEXT[] NOT NULL DEFAULT '{}',
    last_contacted_at TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by        INTEGER NOT NULL,
    -- Words of first/last name, email and company name (lowercase, letters only), kept by
    -- the trigger below; the GIN index answers "contacts having one of these words".
    search_words      TEXT[] NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX contacts_created_at ON contacts (created_at, id);
CREATE INDEX contacts_updated_at ON contacts (updated_at, id);
CREATE INDEX contacts_first_name ON contacts (first_name, id);
CREATE INDEX contacts_last_name ON contacts (last_name, id);
CREATE INDEX contacts_status ON contacts (status, id);
CREATE INDEX contacts_owner ON contacts (owner_id, id);
CREATE INDEX contacts_company ON contacts (company_id, id);
CREATE INDEX contacts_last_contacted ON contacts (last_contacted_at, id);
CREATE INDEX contacts_tags ON contacts USING gin (tags);
CREATE INDEX contacts_search_words ON contacts USING gin (search_words);

-- Every distinct search word of the tenant: the small table typo-tolerant matching runs on
-- (pg_trgm), before the contacts are looked up by exact words. Never pruned: a stale word
-- only costs a lookup that finds nothing.
CREATE TABLE contact_search_terms (
    term TEXT PRIMARY KEY
);
CREATE INDEX contact_search_terms_trgm ON contact_search_terms USING gin (term gin_trgm_ops);

CREATE FUNCTION contact_search_words(first_name TEXT, last_name TEXT, email TEXT, company TEXT)
RETURNS TEXT[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT w ORDER BY w), '{}')
    FROM regexp_split_to_table(lower(concat_ws(' ', first_name, last_name, email, company)), '[^[:alpha:]]+') AS w
    WHERE length(w) >= 2
$$;

CREATE FUNCTION contacts_set_search_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_words := contact_search_words(NEW.first_name, NEW.last_name, NEW.email,
        (SELECT name FROM companies WHERE id = NEW.company_id));
    RETURN NEW;
END $$;

CREATE TRIGGER contacts_search_words BEFORE INSERT OR UPDATE OF first_name, last_name, email, company_id
    ON contacts FOR EACH ROW EXECUTE FUNCTION contacts_set_search_words();

-- New words enter the vocabulary once per statement, in sorted order (concurrent writers
-- take the term locks in the same order: no deadlock).
CREATE FUNCTION contacts_collect_terms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contact_search_terms (term)
    SELECT DISTINCT w FROM new_rows, unnest(new_rows.search_words) AS w ORDER BY w
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER contacts_terms_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_collect_terms();
CREATE TRIGGER contacts_terms_update AFTER UPDATE ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_collect_terms();

-- A renamed company re-words its contacts.
CREATE FUNCTION companies_rename_rewords() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contacts SET search_words = contact_search_words(first_name, last_name, email, NEW.name)
    WHERE company_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER companies_rename AFTER UPDATE OF name ON companies
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION companies_rename_rewords();

-- Lead management: every status change (and the initial status, from_status NULL).
CREATE TABLE contact_status_history (
    id          BIGSERIAL PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    from_status VARCHAR(50),
    to_status   VARCHAR(50) NOT NULL,
    reason      TEXT,
    changed_by  INTEGER NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX contact_status_history_contact ON contact_status_history (contact_id, changed_at DESC, id DESC);
CREATE INDEX contact_status_history_changed_at ON contact_status_history (changed_at);
