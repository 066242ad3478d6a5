-- Search for people as they write names (issue 12, items 6 and 7):
-- * accents and case fold the same way everywhere, for every Latin letter (also letters that
--   do not decompose: ø, ł, đ, ß, æ, œ, ı, ...), through PostgreSQL's unaccent dictionary
--   (global migration V5) wrapped in an IMMUTABLE function so indexes can use it;
-- * Chinese, Japanese and Korean are written without spaces and surnames are often one
--   character: every CJK character (Han, kana, Hangul) is a search word of its own, so
--   王小明 (first name 小明, last name 王) is found by 王小明, 小明 or 王.
-- Companies get the same words (generated column) and an accent-folded trigram index.

CREATE FUNCTION contact_fold(value TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT lower(public.unaccent('public.unaccent'::regdictionary, value))
$$;

-- Words: folded runs of letters, at least two long, and every CJK character alone. The
-- query is tokenized by the same function (contact_search_words(query, NULL, NULL, NULL)).
CREATE OR REPLACE FUNCTION contact_search_words(first_name TEXT, last_name TEXT, email TEXT, company TEXT)
RETURNS TEXT[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT w ORDER BY w), '{}')
    FROM regexp_split_to_table(
        regexp_replace(
            lower(public.unaccent('public.unaccent'::regdictionary, concat_ws(' ', first_name, last_name, email, company))),
            '([\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f])',
            ' \1 ', 'g'),
        '[^[:alpha:]]+') AS w
    WHERE length(w) >= 2
       OR w ~ '^[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]$'
$$;

-- Existing contacts re-worded, the vocabulary rebuilt from them (accented and whole-CJK-run
-- terms of the old tokenizer would only take the places of real matches).
UPDATE contacts c
SET search_words = contact_search_words(c.first_name, c.last_name, c.email, (SELECT name FROM companies WHERE id = c.company_id));
DELETE FROM contact_search_terms;
INSERT INTO contact_search_terms (term)
SELECT DISTINCT w FROM contacts, unnest(search_words) AS w ORDER BY w ON CONFLICT DO NOTHING;

-- Companies: words (short queries, one CJK character) and a folded trigram index
-- (substring and typo-tolerant matches) in place of the one on lower(name).
ALTER TABLE companies ADD COLUMN search_words TEXT[] GENERATED ALWAYS AS (contact_search_words(name, NULL, NULL, NULL)) STORED;
CREATE INDEX companies_search_words ON companies USING gin (search_words);
DROP INDEX companies_name_trgm;
CREATE INDEX companies_name_fold_trgm ON companies USING gin (contact_fold(name) gin_trgm_ops);
CREATE INDEX companies_name_fold_prefix ON companies (contact_fold(name) text_pattern_ops);
