-- Money in every currency's minor units (ISO 4217: JPY and KRW have none, USD 2, BHD and KWD
-- 3, CLF 4): `value` keeps 4 decimal places, each deal stores its currency's minor units
-- (set by deal-service from the iso_currency table), and its weighted value is rounded to
-- them. Totals are summed per currency (deal-service groups by `currency`).
ALTER TABLE deals DROP COLUMN weighted_value;
ALTER TABLE deals ALTER COLUMN value TYPE NUMERIC(17,4);
ALTER TABLE deals ADD COLUMN minor_units SMALLINT NOT NULL DEFAULT 2 CHECK (minor_units BETWEEN 0 AND 4);
-- Existing deals: the currencies whose minor unit is not 2 (ISO 4217 list one).
UPDATE deals SET minor_units = 0
 WHERE currency IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF');
UPDATE deals SET minor_units = 3 WHERE currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND');
UPDATE deals SET minor_units = 4 WHERE currency IN ('CLF', 'UYW');
ALTER TABLE deals ADD COLUMN weighted_value NUMERIC(17,4)
    GENERATED ALWAYS AS (round(value * probability / 100.0, minor_units)) STORED;
-- The pipeline and forecast totals group by stage and currency.
CREATE INDEX deals_stage_currency ON deals (stage_key, currency);
