-- Issue 18 (Citus): no triggers in a tenant schema (Citus refuses triggers on distributed
-- tables). Contacts' search words and the vocabulary are now written by contact-service's
-- repository in the same statement/transaction as the contact (insert, update, import), and
-- a company rename or deletion re-words its contacts there too. Results are unchanged: the
-- same contact_search_words() computes the words.
DROP TRIGGER IF EXISTS contacts_search_words ON contacts;
DROP TRIGGER IF EXISTS contacts_terms_insert ON contacts;
DROP TRIGGER IF EXISTS contacts_terms_update ON contacts;
DROP TRIGGER IF EXISTS companies_rename ON companies;
DROP FUNCTION IF EXISTS contacts_set_search_words();
DROP FUNCTION IF EXISTS contacts_collect_terms();
DROP FUNCTION IF EXISTS companies_rename_rewords();
