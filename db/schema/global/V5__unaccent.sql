-- Accent folding for every search box (contact-service's `contact_fold`): PostgreSQL's
-- unaccent dictionary (contrib, ships with the server), in public beside pg_trgm.
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;
