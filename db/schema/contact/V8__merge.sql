-- Issue 16 (merge): duplicates and merging of contacts and companies.
--
-- merged_into: the survivor a merged record was merged into. A merged record is in the trash
-- (deleted_at set by the merge, contact V7) and keeps pointing at its survivor, so a second
-- merge of it answers 409 naming the survivor, and the trash shows where it went. No foreign
-- key: the survivor may later be erased (the merged record is then purged like any other).
ALTER TABLE contacts ADD COLUMN merged_into INTEGER;

ALTER TABLE companies ADD COLUMN merged_into INTEGER;

-- Duplicate candidates (GET /contacts/duplicates, /companies/duplicates) are found through
-- these indexes, one probe per contact instead of comparing every pair. Only live rows are
-- indexed (trashed ones are never candidates). The expressions are repeated verbatim by
-- services/contact/src/repo/merge.rs (an index is used only for the same expression).
--
-- Same mailbox: the address lowercased with a "+tag" of the local part removed
-- (ann+crm@x.com and Ann@X.com are one mailbox; identical addresses cannot both be live,
-- contacts_email_key).
CREATE INDEX contacts_dup_email ON contacts ((lower(regexp_replace(email, '\+[^@]*@', '@')))) WHERE email IS NOT NULL AND deleted_at IS NULL;

-- Same phone: the last 9 digits (a country prefix or trunk 0 written or not: +44 20 7946 0958
-- and 020 7946 0958 match); numbers of fewer than 7 digits are not compared.
CREATE INDEX contacts_dup_phone ON contacts ((right(regexp_replace(phone, '[^0-9]', '', 'g'), 9))) WHERE phone IS NOT NULL AND length(regexp_replace(phone, '[^0-9]', '', 'g')) >= 7 AND deleted_at IS NULL;

-- Similar names: trigrams of the folded full name (accents and case folded like search).
CREATE INDEX contacts_dup_name_trgm ON contacts USING gin ((contact_fold(first_name || ' ' || last_name)) gin_trgm_ops) WHERE deleted_at IS NULL;

-- Companies: same site (the domain, else the website's host, without "www."); similar names
-- use companies_name_fold_trgm (contact V2).
CREATE INDEX companies_dup_site ON companies ((lower(regexp_replace(coalesce(nullif(domain, ''), website), '^([a-zA-Z]+://)?(www\.)?([^/:?#]+).*$', '\3')))) WHERE coalesce(nullif(domain, ''), website) IS NOT NULL AND deleted_at IS NULL;
