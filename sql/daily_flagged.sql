-- The day's flagged logins, for morning triage: every login of $date (a UTC
-- day) that the model flagged, most anomalous first, with what an analyst
-- looks at next (the address, whether the model knew the entity, the
-- browser).
--
-- A login is flagged when the score step flagged it (`score --threshold`);
-- scores written without a threshold are flagged here when anomaly_score
-- (= -dot_product) is above $threshold.
--
-- @param date                The UTC day to triage (YYYY-MM-DD).
-- @param threshold = 0       Flag above this anomaly_score where the scores carry no flag.
WITH flagged AS (
    SELECT
        "timestamp",
        entity,
        ip,
        ROUND(CAST(anomaly_score AS DOUBLE), 3) AS anomaly_score,
        entity_seen,
        user_agent,
        model_id
    FROM scores
    WHERE date = CAST($date AS DATE)
      AND COALESCE(flagged, anomaly_score > CAST($threshold AS DOUBLE))
)
SELECT *
FROM flagged
ORDER BY anomaly_score DESC, "timestamp", entity, ip
