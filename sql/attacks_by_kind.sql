-- Attacks caught and missed, by kind: every labelled attack login (the
-- labels table, from synth) of the 7 UTC days ending on $date, matched to
-- its score by entity, address and time. Caught: flagged. Missed: scored but
-- not flagged. Unscored: no score matches it (filtered out at ingest,
-- rejected, or that day not scored yet). recall = caught / scored.
--
-- @param date                The last UTC day of the week (YYYY-MM-DD).
-- @param threshold = 0       Flag above this anomaly_score where the scores carry no flag.
WITH attacks AS (
    SELECT "timestamp", entity, ip, attack_kind
    FROM labels
    WHERE date BETWEEN CAST($date AS DATE) - INTERVAL '6 days' AND CAST($date AS DATE)
),
scored AS (
    SELECT
        "timestamp",
        entity,
        ip,
        MAX(CASE WHEN COALESCE(flagged, anomaly_score > CAST($threshold AS DOUBLE)) THEN 1 ELSE 0 END) AS caught,
        MAX(CAST(anomaly_score AS DOUBLE)) AS score
    FROM scores
    WHERE date BETWEEN CAST($date AS DATE) - INTERVAL '6 days' AND CAST($date AS DATE)
    GROUP BY "timestamp", entity, ip
),
per_kind AS (
    SELECT
        a.attack_kind,
        COUNT(*) AS attacks,
        COUNT(CASE WHEN s.caught = 1 THEN 1 END) AS caught,
        COUNT(CASE WHEN s.caught = 0 THEN 1 END) AS missed,
        COUNT(CASE WHEN s.caught IS NULL THEN 1 END) AS unscored,
        ROUND(CAST(COUNT(CASE WHEN s.caught = 1 THEN 1 END) AS DOUBLE) / NULLIF(COUNT(s.caught), 0), 4) AS recall,
        ROUND(MEDIAN(s.score), 3) AS median_anomaly_score
    FROM attacks a
    LEFT JOIN scored s
      ON a.entity = s.entity AND a.ip = s.ip AND a."timestamp" = s."timestamp"
    GROUP BY a.attack_kind
)
SELECT *
FROM per_kind
ORDER BY attack_kind
